/**
 * The two handles storage functions take: `Db` is the database or a
 * transaction (either will do), `Tx` only a transaction (the function must
 * run inside one: it reads what it then writes, or takes row locks).
 */
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from './schema.js';

export type Db = Kysely<Schema> | Transaction<Schema>;
export type Tx = Transaction<Schema>;
