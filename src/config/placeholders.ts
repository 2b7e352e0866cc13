/**
 * The sample config/homeserver.yaml ships `CHANGEME-…` where its secrets go.
 * Anyone can read those in the repository, so a server started with one
 * would let anyone register an admin (registration_shared_secret), forge
 * tokens (macaroon_secret_key) or use its TURN server. The loader notes each
 * secret that still holds one (config.placeholder_secrets) without failing,
 * so `--generate-keys` and `migrate` still work from the sample; starting
 * the server refuses while any is left.
 */

const PLACEHOLDER = /CHANGEME/i;

export function isPlaceholder(secret: string): boolean {
  return PLACEHOLDER.test(secret);
}

/** What to put instead, by key (the last part of the key path, without `_path`). */
const REPLACE_WITH: Record<string, string> = {
  password: "the database user's real password",
  DATABASE_URL: "the database user's real password",
  turn_password: 'the password of turn_username on the TURN server',
  turn_shared_secret: "a long random secret of your own (e.g. from `openssl rand -hex 32`), the same as coturn's static-auth-secret",
};
const DEFAULT_REPLACEMENT = 'a long random secret of your own (e.g. from `openssl rand -hex 32`)';

/**
 * One line, `<file>: <key path>: …` as config errors read: `where` is the
 * config file (or "environment"), `subject` what holds the placeholder when
 * it is not the value itself (a `*_path` file, the password in a URL). The
 * value is never shown.
 */
export function placeholderLine(where: string, key: string, subject?: string): string {
  const last = (key.split('.').pop() ?? key).replace(/_path$/, '');
  const replacement = REPLACE_WITH[last] ?? DEFAULT_REPLACEMENT;
  const holder = subject ? `${subject} still holds` : 'still holds';
  return `${where}: ${key}: ${holder} a CHANGEME placeholder from the sample config; replace it with ${replacement} before starting the server`;
}

/** The password in a PostgreSQL URL (user:password@ or ?password=), if it is a placeholder. */
export function urlHasPlaceholderPassword(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  const fromUserinfo = safeDecode(parsed.password);
  const fromQuery = parsed.searchParams.get('password') ?? '';
  return isPlaceholder(fromUserinfo) || isPlaceholder(fromQuery);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
