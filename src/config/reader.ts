/**
 * Typed access to the merged homeserver.yaml, with errors that name the
 * file and key path (and never print a secret's value).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { isJsonObject } from '../core/json-values.js';
import { parseDuration, parseSize } from './durations.js';
import { ConfigError, InvalidValueError, describeValue } from './errors.js';
import { isPlaceholder, placeholderLine } from './placeholders.js';

/** Keys whose values never appear in messages. */
const SECRET_KEYS = new Set([
  'registration_shared_secret',
  'macaroon_secret_key',
  'form_secret',
  'turn_shared_secret',
  'turn_password',
  'password',
  'pepper',
  'signing_key',
  'recaptcha_private_key',
  'worker_replication_secret',
]);

function isSecretPath(path: string): boolean {
  const last = path.split(/[.[\]]+/).filter(Boolean).pop() ?? path;
  return SECRET_KEYS.has(last);
}

export type Obj = Record<string, unknown>;

/** A YAML mapping (a JSON object, not a timestamp the parser made a Date of). */
export function isObj(v: unknown): v is Obj {
  return isJsonObject(v) && !(v instanceof Date);
}

/** Reads typed values out of the merged config, naming the file and key in every error (load.ts and the section readers beside it). */
export class Reader {
  /** Secrets still holding the sample's CHANGEME placeholder, one line each (see placeholders.ts). */
  readonly placeholders: string[] = [];

  constructor(
    readonly raw: Obj,
    private readonly origin: Map<string, string>,
    private readonly allFiles: string,
    readonly configDir: string,
  ) {}

  fileOf(path: string): string {
    const top = /^[^.[]+/.exec(path)?.[0] ?? path;
    return this.origin.get(top) ?? this.allFiles;
  }

  fail(path: string, detail: string): never {
    throw new ConfigError(detail, { file: this.fileOf(path), key: path });
  }

  /** Notes `secret` (read at `path`, or from the file `secretFile` that `path` names) if it is a placeholder. */
  notePlaceholder(path: string, secret: string, secretFile?: string): void {
    if (isPlaceholder(secret)) this.placeholders.push(placeholderLine(this.fileOf(path), path, secretFile && `the file ${secretFile}`));
  }

  expected(path: string, what: string, v: unknown): never {
    this.fail(path, `expected ${what}, got ${describeValue(v, isSecretPath(path))}`);
  }

  /** A top-level value; YAML null (`key:` with nothing after it) counts as absent. */
  get(key: string): unknown {
    const v = this.raw[key];
    return v === null ? undefined : v;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  // Value checks, for a value found at `path`.

  str(v: unknown, path: string): string {
    if (typeof v !== 'string') this.expected(path, 'a string', v);
    return v;
  }

  nonEmptyStr(v: unknown, path: string): string {
    const s = this.str(v, path);
    if (s.trim() === '') this.fail(path, 'must not be empty');
    return s;
  }

  bool(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.expected(path, 'true or false', v);
    return v;
  }

  /** Synapse's strtobool(str(value)), used for a few registration flags. */
  strtobool(v: unknown, path: string): boolean {
    if (typeof v === 'boolean') return v;
    const s = typeof v === 'string' || typeof v === 'number' ? String(v).toLowerCase() : undefined;
    if (s !== undefined && ['y', 'yes', 't', 'true', 'on', '1'].includes(s)) return true;
    if (s !== undefined && ['n', 'no', 'f', 'false', 'off', '0'].includes(s)) return false;
    this.expected(path, 'true or false', v);
  }

  int(v: unknown, path: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.expected(
        path,
        max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer between ${min} and ${max}`,
        v,
      );
    }
    return v;
  }

  num(v: unknown, path: string, min: number): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) this.expected(path, `a number of at least ${min}`, v);
    return v;
  }

  duration(v: unknown, path: string): number {
    try {
      return parseDuration(v);
    } catch (err) {
      if (err instanceof InvalidValueError) this.fail(path, err.message);
      throw err;
    }
  }

  size(v: unknown, path: string): number {
    try {
      return parseSize(v);
    } catch (err) {
      if (err instanceof InvalidValueError) this.fail(path, err.message);
      throw err;
    }
  }

  list(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.expected(path, 'a list', v);
    return v;
  }

  strList(v: unknown, path: string): string[] {
    return this.list(v, path).map((item, i) => this.str(item, `${path}[${i}]`));
  }

  obj(v: unknown, path: string): Obj {
    if (!isObj(v)) this.expected(path, 'a mapping (key: value pairs)', v);
    return v;
  }

  // Top-level conveniences with defaults.

  topBool(key: string, def: boolean): boolean {
    const v = this.get(key);
    return v === undefined ? def : this.bool(v, key);
  }

  topStr(key: string): string | undefined {
    const v = this.get(key);
    return v === undefined ? undefined : this.str(v, key);
  }

  topDuration(key: string, def: string): number {
    const v = this.get(key);
    return this.duration(v === undefined ? def : v, key);
  }

  topSize(key: string, def: string): number {
    const v = this.get(key);
    return this.size(v === undefined ? def : v, key);
  }

  topStrList(key: string, def: string[]): string[] {
    const v = this.get(key);
    return v === undefined ? def : this.strList(v, key);
  }

  /** A path from the config, resolved against the config directory. */
  path(v: unknown, path: string): string {
    const s = this.nonEmptyStr(v, path);
    return isAbsolute(s) ? s : resolve(this.configDir, s);
  }

  /** Reads a secret from a `*_path` key's file (trimmed), as Synapse's read_file does. */
  secretFile(key: string): string {
    const file = this.path(this.get(key), key);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.fail(key, `cannot read ${file} (${code === 'ENOENT' ? 'no such file' : (code ?? String(err))})`);
    }
    const secret = text.trim();
    if (secret === '') this.fail(key, `${file} is empty`);
    this.notePlaceholder(key, secret, file);
    return secret;
  }

  /** `key` inline or `key_path` from a file; both set is an error, as in Synapse. */
  secret(key: string): string | undefined {
    const pathKey = `${key}_path`;
    const inline = this.get(key);
    if (inline !== undefined && this.has(pathKey)) {
      this.fail(key, `both ${key} and ${pathKey} are set; use one of them`);
    }
    if (inline !== undefined) {
      const secret = this.nonEmptyStr(inline, key);
      this.notePlaceholder(key, secret);
      return secret;
    }
    if (this.has(pathKey)) return this.secretFile(pathKey);
    return undefined;
  }
}
