/** Small checks on parsed JSON values (request bodies, event content, settings), shared by every layer. */

/** A JSON object (not null, not an array). */
export function isJsonObject<T extends Record<string, unknown> = Record<string, unknown>>(v: unknown): v is T {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The value if it is a JSON object, else a new empty object (content and settings that may be missing or malformed). */
export function objectOrEmpty<T extends Record<string, unknown> = Record<string, unknown>>(v: unknown): T {
  return isJsonObject<T>(v) ? v : ({} as T);
}

/**
 * Whether a value holds U+0000 anywhere (a string, a key, nested): valid
 * JSON, but PostgreSQL text and jsonb cannot store it, so bodies carrying
 * it are refused with the spec's 400 before anything is written.
 */
export function containsNul(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\u0000');
  if (Array.isArray(v)) return v.some(containsNul);
  if (isJsonObject(v)) return Object.entries(v).some(([k, x]) => k.includes('\u0000') || containsNul(x));
  return false;
}
