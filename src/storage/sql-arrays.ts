/** Array parameters for raw SQL (`= ANY(...)`, `unnest(...)`), typed so PostgreSQL needs no guess. */
import { type RawBuilder, sql } from 'kysely';

export function textArray(values: readonly string[]): RawBuilder<string[]> {
  return sql`${sql.val([...values])}::text[]`;
}
