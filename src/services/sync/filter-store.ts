/**
 * Filters as the API uses them: upload (validated, timeline limit capped,
 * stored), download, and the `filter` parameter of /sync, which is either a
 * stored filter's id or inline JSON (it starts with `{`). Stored filters
 * never change, so parsed ones are kept in a small LRU cache; a long-polling
 * client passing the same id costs no query after the first.
 */
import type { Kysely } from 'kysely';
import { MatrixError } from '../../matrix-error.js';
import { addUserFilter, getUserFilter } from '../../storage/filters.js';
import type { Schema } from '../../storage/schema.js';
import { capTimelineLimit, DEFAULT_FILTER, parseFilter, validateFilter, type SyncFilter } from '../rooms/event-filter.js';

const CACHE_MAX = 2000;

class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
}

function parseFilterId(s: string): number | undefined {
  if (!/^\d{1,15}$/.test(s)) return undefined;
  return Number(s);
}

export class FilterStore {
  private readonly stored = new Lru<SyncFilter>(CACHE_MAX);
  private readonly inline = new Lru<SyncFilter>(CACHE_MAX);

  constructor(
    private readonly db: Kysely<Schema>,
    /** `filter_timeline_limit`: the most timeline events a filter may ask for (-1: no cap). */
    private readonly maxTimelineLimit: number,
  ) {}

  /** POST /user/{userId}/filter: validates and stores; returns the id as a string. */
  async upload(userId: string, body: unknown, now = Date.now()): Promise<string> {
    validateFilter(body);
    const capped = capTimelineLimit(body, this.maxTimelineLimit);
    const id = await this.db.transaction().execute((tx) => addUserFilter(tx, userId, capped, now));
    return String(id);
  }

  /** GET /user/{userId}/filter/{filterId}: the stored JSON, 400 for a malformed id, 404 for an unknown one. */
  async download(userId: string, filterId: string): Promise<Record<string, unknown>> {
    const id = parseFilterId(filterId);
    if (id === undefined) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid filter_id');
    const json = await getUserFilter(this.db, userId, id);
    if (!json) throw new MatrixError(404, 'M_NOT_FOUND', 'No such filter');
    return json;
  }

  /** The /sync `filter` parameter: absent, a stored id, or inline JSON. */
  async forSync(userId: string, param: string | undefined): Promise<SyncFilter> {
    if (param === undefined || param === '') return DEFAULT_FILTER;
    if (param.startsWith('{')) {
      const cached = this.inline.get(param);
      if (cached) return cached;
      let json: unknown;
      try {
        json = JSON.parse(param);
      } catch {
        throw new MatrixError(400, 'M_NOT_JSON', 'Invalid filter JSON');
      }
      validateFilter(json);
      const parsed = parseFilter(capTimelineLimit(json, this.maxTimelineLimit));
      this.inline.set(param, parsed);
      return parsed;
    }
    const key = `${userId}\u0000${param}`;
    const cached = this.stored.get(key);
    if (cached) return cached;
    const id = parseFilterId(param);
    const json = id === undefined ? undefined : await getUserFilter(this.db, userId, id);
    if (!json) throw new MatrixError(400, 'M_INVALID_PARAM', 'No such filter');
    const parsed = parseFilter(json);
    this.stored.set(key, parsed);
    return parsed;
  }
}
