/**
 * Synapse's room-directory settings, read from homeserver.yaml:
 * `alias_creation_rules`, `room_list_publication_rules`,
 * `require_membership_for_aliases`, `enable_room_list_search`,
 * `allow_public_rooms_without_auth` is typed config and read elsewhere.
 *
 * A rule list is matched in order and the first matching rule decides;
 * no match denies. Each rule's `user_id`, `alias` and `room_id` are globs
 * (`*`, `?`, case-insensitive, whole string) defaulting to `*`. A room with
 * no aliases matches only a rule whose alias glob is `*`; a room with
 * several matches when any of them does.
 *
 * Defaults as Synapse documents them: alias creation is allowed to
 * everyone; publishing to the room list (since Synapse 1.126) is refused
 * to everyone but server admins unless rules are configured.
 */
import { ConfigError } from '../../config/errors.js';

export interface DirectoryRule {
  action: 'allow' | 'deny';
  userId: RegExp;
  roomId: RegExp;
  alias: RegExp;
  aliasMatchesAll: boolean;
}

export interface DirectorySettings {
  aliasCreationRules: DirectoryRule[];
  /** undefined: not configured (only server admins may publish). */
  publicationRules: DirectoryRule[] | undefined;
  requireMembershipForAliases: boolean;
  enableRoomListSearch: boolean;
}

/** Synapse's glob: `*` any run, `?` one character, anchored, case-insensitive. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += re.endsWith('.*?') ? '' : '.*?';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'isu');
}

function parseRules(option: string, value: unknown): DirectoryRule[] {
  if (!Array.isArray(value)) throw new ConfigError(`${option} must be a list of rules`, { key: option });
  return value.map((r, i) => {
    const key = `${option}[${i}]`;
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new ConfigError('a rule must be a mapping', { key });
    const rule = r as Record<string, unknown>;
    const action = rule['action'] ?? 'allow';
    if (action !== 'allow' && action !== 'deny') throw new ConfigError(`${option} rules can only have action of 'allow' or 'deny'`, { key });
    const glob = (k: string): string => {
      const v = rule[k] ?? '*';
      if (typeof v !== 'string') throw new ConfigError(`${k} must be a string`, { key: `${key}.${k}` });
      return v;
    };
    const alias = glob('alias');
    return { action, userId: globToRegExp(glob('user_id')), roomId: globToRegExp(glob('room_id')), alias: globToRegExp(alias), aliasMatchesAll: alias === '*' };
  });
}

export function directorySettings(raw: Record<string, unknown>): DirectorySettings {
  const bool = (k: string, d: boolean) => (typeof raw[k] === 'boolean' ? (raw[k] as boolean) : d);
  const aliasRules = raw['alias_creation_rules'];
  const pubRules = raw['room_list_publication_rules'];
  return {
    aliasCreationRules:
      aliasRules === undefined || aliasRules === null ? parseRules('alias_creation_rules', [{ action: 'allow' }]) : parseRules('alias_creation_rules', aliasRules),
    publicationRules: pubRules === undefined || pubRules === null ? undefined : parseRules('room_list_publication_rules', pubRules),
    requireMembershipForAliases: bool('require_membership_for_aliases', true),
    enableRoomListSearch: bool('enable_room_list_search', true),
  };
}

function decide(rules: DirectoryRule[], userId: string, roomId: string, aliases: readonly string[]): boolean {
  for (const r of rules) {
    if (!r.userId.test(userId) || !r.roomId.test(roomId)) continue;
    if (!r.aliasMatchesAll && !aliases.some((a) => r.alias.test(a))) continue;
    return r.action === 'allow';
  }
  return false;
}

export function aliasCreationAllowed(s: DirectorySettings, userId: string, roomId: string, alias: string): boolean {
  return decide(s.aliasCreationRules, userId, roomId, [alias]);
}

export function publishingAllowed(s: DirectorySettings, user: { userId: string; isAdmin: boolean }, roomId: string, aliases: readonly string[]): boolean {
  if (s.publicationRules === undefined) return user.isAdmin;
  return decide(s.publicationRules, user.userId, roomId, aliases);
}
