/** Small type guards for JSON-shaped input. */
import { isJsonObject } from '../json-values.js';
import type { JsonObject } from '../pdu.js';

/** A JSON object (not null, not an array), typed as event JSON. */
export const isObject: (v: unknown) => v is JsonObject = isJsonObject;

/** `obj[key]` if it is a string. */
export function stringAt(obj: JsonObject, key: string): string | undefined {
  const v = obj[key];
  return typeof v === 'string' ? v : undefined;
}
