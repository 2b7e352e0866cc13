/**
 * Table shapes for kysely. One interface per table, grouped by family; each
 * family's queries live in their own module beside this file.
 */

export interface ServerMetaTable {
  key: string;
  value: string;
  updated_ts: number;
}

export interface Schema {
  server_meta: ServerMetaTable;
}
