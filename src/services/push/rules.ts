/**
 * Push rules as the client-server API shows them (the spec's PushRule and
 * PushRuleset), and the server-default rules every user starts with.
 *
 * The defaults follow the spec's predefined rules, in Synapse's order, and
 * keep the three legacy mention rules (`.m.rule.contains_display_name`,
 * `.m.rule.roomnotif`, `.m.rule.contains_user_name`) that Synapse still
 * serves: they only apply to events without `m.mentions` (see the
 * evaluator), so clients that do not send `m.mentions` still highlight.
 * Rule order, highest priority first: `.m.rule.master`, the user's override
 * rules, the default override rules; the user's content rules, the default
 * content rule; room; sender; the user's underride rules, the default
 * underride rules.
 */
import type { JsonObject, JsonValue } from '../../core/pdu.js';

export const RULE_KINDS = ['override', 'content', 'room', 'sender', 'underride'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export function isRuleKind(k: string): k is RuleKind {
  return (RULE_KINDS as readonly string[]).includes(k);
}

/** `"notify"`, a legacy string action, or an object such as `{set_tweak, value}`. */
export type PushAction = string | JsonObject;

export interface PushCondition {
  kind: string;
  key?: string;
  pattern?: string;
  is?: string;
  value?: JsonValue;
  [extra: string]: JsonValue | undefined;
}

export interface PushRule {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  actions: PushAction[];
  conditions?: PushCondition[];
  pattern?: string;
}

export type PushRuleset = Record<RuleKind, PushRule[]>;

const SOUND_DEFAULT: JsonObject = { set_tweak: 'sound', value: 'default' };
const SOUND_RING: JsonObject = { set_tweak: 'sound', value: 'ring' };
const HIGHLIGHT: JsonObject = { set_tweak: 'highlight' };

const match = (key: string, pattern: string): PushCondition => ({ kind: 'event_match', key, pattern });
const memberCount = (is: string): PushCondition => ({ kind: 'room_member_count', is });

function rule(rule_id: string, conditions: PushCondition[] | undefined, actions: PushAction[], extra: Partial<PushRule> = {}): PushRule {
  const r: PushRule = { rule_id, default: true, enabled: true, actions, ...extra };
  if (conditions) r.conditions = conditions;
  return r;
}

/** The rule that always comes first, even before the user's own override rules. */
export function defaultMasterRule(): PushRule {
  return rule('.m.rule.master', [], [], { enabled: false });
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * The defaults that are the same for every user, built once and shared
 * (frozen) by every user's ruleset, so a cache of many rulesets stays small.
 */
const SHARED = deepFreeze({
  suppressNotices: rule('.m.rule.suppress_notices', [match('content.msgtype', 'm.notice')], []),
  memberEvent: rule('.m.rule.member_event', [match('type', 'm.room.member')], []),
  displayName: rule('.m.rule.contains_display_name', [{ kind: 'contains_display_name' }], ['notify', SOUND_DEFAULT, HIGHLIGHT]),
  roomMention: rule(
    '.m.rule.is_room_mention',
    [
      { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
      { kind: 'sender_notification_permission', key: 'room' },
    ],
    ['notify', HIGHLIGHT],
  ),
  roomNotif: rule('.m.rule.roomnotif', [match('content.body', '@room'), { kind: 'sender_notification_permission', key: 'room' }], ['notify', HIGHLIGHT]),
  tombstone: rule('.m.rule.tombstone', [match('type', 'm.room.tombstone'), match('state_key', '')], ['notify', HIGHLIGHT]),
  reaction: rule('.m.rule.reaction', [match('type', 'm.reaction')], []),
  serverAcl: rule('.m.rule.room.server_acl', [match('type', 'm.room.server_acl'), match('state_key', '')], []),
  suppressEdits: rule('.m.rule.suppress_edits', [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }], []),
  underride: [
    rule('.m.rule.call', [match('type', 'm.call.invite')], ['notify', SOUND_RING]),
    rule('.m.rule.encrypted_room_one_to_one', [memberCount('2'), match('type', 'm.room.encrypted')], ['notify', SOUND_DEFAULT]),
    rule('.m.rule.room_one_to_one', [memberCount('2'), match('type', 'm.room.message')], ['notify', SOUND_DEFAULT]),
    rule('.m.rule.message', [match('type', 'm.room.message')], ['notify']),
    rule('.m.rule.encrypted', [match('type', 'm.room.encrypted')], ['notify']),
  ],
});

/** Shared default rules whose match does not depend on the user (every one but contains_display_name). */
const USER_INDEPENDENT: ReadonlySet<PushRule> = new Set(
  [...Object.values(SHARED).filter((v): v is PushRule => !Array.isArray(v)), ...SHARED.underride].filter(
    (r) => !(r.conditions ?? []).some((c) => c.kind === 'contains_display_name'),
  ),
);

/** Whether a rule's match is the same for every user (a shared server default): an evaluator may answer it once per event. */
export function isUserIndependent(rule: PushRule): boolean {
  return USER_INDEPENDENT.has(rule);
}

/** The server-default rules for `userId` (user-specific patterns filled in), per kind, without `.m.rule.master`. */
export function defaultRules(userId: string): PushRuleset {
  const localpart = userId.slice(1, userId.includes(':') ? userId.indexOf(':') : undefined);
  return {
    override: [
      SHARED.suppressNotices,
      rule('.m.rule.invite_for_me', [match('type', 'm.room.member'), match('content.membership', 'invite'), match('state_key', userId)], ['notify', SOUND_DEFAULT]),
      SHARED.memberEvent,
      rule('.m.rule.is_user_mention', [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }], ['notify', SOUND_DEFAULT, HIGHLIGHT]),
      SHARED.displayName,
      SHARED.roomMention,
      SHARED.roomNotif,
      SHARED.tombstone,
      SHARED.reaction,
      SHARED.serverAcl,
      SHARED.suppressEdits,
    ],
    content: [rule('.m.rule.contains_user_name', undefined, ['notify', SOUND_DEFAULT, HIGHLIGHT], { pattern: localpart })],
    room: [],
    sender: [],
    underride: [...SHARED.underride],
  };
}

/** Ids of the server-default rules, per kind (the same for every user). */
export const DEFAULT_RULE_IDS: Readonly<Record<RuleKind, ReadonlySet<string>>> = (() => {
  const d = defaultRules('@x:x');
  d.override.unshift(defaultMasterRule());
  return Object.fromEntries(RULE_KINDS.map((k) => [k, new Set(d[k].map((r) => r.rule_id))])) as Record<RuleKind, Set<string>>;
})();

/** A user's own rule as stored (see storage/push.ts). */
export interface StoredUserRule {
  kind: RuleKind;
  rule_id: string;
  priority: number;
  conditions: PushCondition[] | null;
  pattern: string | null;
  actions: PushAction[];
  enabled: boolean;
}

/** A user's change to a server-default rule: `enabled` and/or `actions`, null where unchanged. */
export interface DefaultRuleOverride {
  kind: RuleKind;
  rule_id: string;
  enabled: boolean | null;
  actions: PushAction[] | null;
}

/** The user's full ruleset, in evaluation order, as GET /pushrules/ shows it. */
export function buildRuleset(userId: string, own: readonly StoredUserRule[], overrides: readonly DefaultRuleOverride[]): PushRuleset {
  const defaults = defaultRules(userId);
  const changed = new Map(overrides.map((o) => [`${o.kind}\u0000${o.rule_id}`, o]));
  const applyOverride = (kind: RuleKind, r: PushRule): PushRule => {
    const o = changed.get(`${kind}\u0000${r.rule_id}`);
    if (!o) return r;
    return { ...r, enabled: o.enabled ?? r.enabled, actions: o.actions ?? r.actions };
  };
  const out = {} as PushRuleset;
  for (const kind of RULE_KINDS) {
    const mine = own
      .filter((r) => r.kind === kind)
      .sort((a, b) => b.priority - a.priority)
      .map((r) => userRuleToClient(kind, r));
    const defs = defaults[kind].map((r) => applyOverride(kind, r));
    out[kind] = kind === 'override' ? [applyOverride(kind, defaultMasterRule()), ...mine, ...defs] : [...mine, ...defs];
  }
  return out;
}

function userRuleToClient(kind: RuleKind, r: StoredUserRule): PushRule {
  const out: PushRule = { rule_id: r.rule_id, default: false, enabled: r.enabled, actions: r.actions };
  if (kind === 'override' || kind === 'underride') out.conditions = r.conditions ?? [];
  if (kind === 'content') out.pattern = r.pattern ?? '';
  return out;
}
