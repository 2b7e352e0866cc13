/**
 * The URL preview settings from homeserver.yaml, as Synapse reads them:
 * `url_preview_enabled`, the IP blacklist and whitelist (already parsed by
 * the config loader), and three keys read here from the raw config:
 *
 * - `max_spider_size`: largest page or image fetched (default 10M);
 * - `url_preview_url_blacklist`: entries of URL-component patterns; a URL
 *   matching every component of one entry is refused. A pattern starting
 *   with `^` is a regular expression (anchored at the start), any other a
 *   case-insensitive glob (`*`, `?`) matching the whole component;
 * - `url_preview_accept_language`: the Accept-Language values sent.
 *
 * A bad value throws, naming the key, so the server does not start with a
 * preview policy it misread.
 */
import type { HomeserverConfig } from '../../config/types.js';
import { parseSize } from '../../config/durations.js';

export const DEFAULT_MAX_SPIDER_SIZE = 10 * 1024 * 1024;

/** The URL components an url_preview_url_blacklist entry may name (Python's urlsplit attributes). */
const URL_COMPONENTS = ['scheme', 'netloc', 'path', 'params', 'query', 'fragment', 'username', 'password', 'hostname', 'port'] as const;
type UrlComponent = (typeof URL_COMPONENTS)[number];

export type UrlRule = Partial<Record<UrlComponent, RegExp>>;

export interface PreviewConfig {
  blacklist: string[];
  whitelist: string[];
  maxSpiderSize: number;
  urlRules: UrlRule[];
  acceptLanguage?: string;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
  return new RegExp(`^${body}$`, 'is');
}

function parseUrlRules(raw: unknown): UrlRule[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new Error('url_preview_url_blacklist: expected a list of mappings');
  return raw.map((entry, i) => {
    const where = `url_preview_url_blacklist[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new Error(`${where}: expected a mapping`);
    const rule: UrlRule = {};
    for (const [key, pattern] of Object.entries(entry as Record<string, unknown>)) {
      if (!(URL_COMPONENTS as readonly string[]).includes(key)) throw new Error(`${where}: unknown URL component ${JSON.stringify(key)}`);
      if (typeof pattern !== 'string') throw new Error(`${where}.${key}: expected a string pattern`);
      try {
        rule[key as UrlComponent] = pattern.startsWith('^') ? new RegExp(pattern, 's') : globToRegExp(pattern);
      } catch {
        throw new Error(`${where}.${key}: not a valid regular expression`);
      }
    }
    return rule;
  });
}

export function previewConfig(config: HomeserverConfig): PreviewConfig {
  const raw = config.raw;
  let maxSpiderSize = DEFAULT_MAX_SPIDER_SIZE;
  if (raw['max_spider_size'] !== undefined && raw['max_spider_size'] !== null) {
    try {
      maxSpiderSize = parseSize(raw['max_spider_size']);
    } catch (err) {
      throw new Error(`max_spider_size: ${(err as Error).message}`);
    }
  }
  const lang = raw['url_preview_accept_language'];
  let acceptLanguage: string | undefined;
  if (lang !== undefined && lang !== null) {
    if (!Array.isArray(lang) || lang.some((l) => typeof l !== 'string' || /[\r\n]/.test(l))) {
      throw new Error('url_preview_accept_language: expected a list of language strings');
    }
    acceptLanguage = lang.join(', ') || undefined;
  }
  return {
    blacklist: config.url_preview_ip_range_blacklist,
    whitelist: config.url_preview_ip_range_whitelist,
    maxSpiderSize,
    urlRules: parseUrlRules(raw['url_preview_url_blacklist']),
    acceptLanguage,
  };
}

function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The components of a URL, as Python's urlsplit names them; null for those absent (no user, no port), which match no pattern. */
function components(url: URL): Record<UrlComponent, string | null> {
  const auth = url.username ? `${url.username}${url.password ? `:${url.password}` : ''}@` : '';
  return {
    scheme: url.protocol.replace(/:$/, ''),
    netloc: `${auth}${url.host}`,
    path: url.pathname,
    params: '',
    query: url.search.replace(/^\?/, ''),
    fragment: url.hash.replace(/^#/, ''),
    username: url.username ? decoded(url.username) : null,
    password: url.password ? decoded(url.password) : null,
    hostname: url.hostname,
    port: url.port || null,
  };
}

/** Whether an entry of url_preview_url_blacklist refuses this URL. */
export function urlBlocked(rules: readonly UrlRule[], url: URL): boolean {
  if (rules.length === 0) return false;
  const parts = components(url);
  return rules.some((rule) => {
    const keys = Object.keys(rule) as UrlComponent[];
    return keys.length > 0 && keys.every((k) => parts[k] !== null && rule[k]!.test(parts[k]));
  });
}
