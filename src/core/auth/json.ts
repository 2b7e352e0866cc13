/** Small type guards for JSON-shaped input. */
import type { JsonObject, JsonValue } from '../pdu.js';

export function isObject(v: JsonValue | undefined | unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `obj[key]` if it is a string. */
export function stringAt(obj: JsonObject, key: string): string | undefined {
  const v = obj[key];
  return typeof v === 'string' ? v : undefined;
}
