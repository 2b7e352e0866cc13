/**
 * The push rule evaluator: pure and synchronous, no I/O. Given one event
 * and what the rules need to know about its room (joined member count, the
 * sender's power level, the `notifications` power levels), it runs a user's
 * ruleset and returns the actions of the first rule that matches.
 *
 * Conditions, as the spec defines them: `event_match` (globs, whole value,
 * or word-bounded for `content.body`), `event_property_is`,
 * `event_property_contains`, `contains_display_name`, `room_member_count`,
 * `sender_notification_permission`. Unknown conditions never match. Legacy
 * actions (`dont_notify`, `coalesce`) are dropped. The legacy mention rules
 * do not apply to events that carry `m.mentions` (spec v1.7), as Synapse.
 */
import type { JsonObject, JsonValue } from '../../core/pdu.js';
import { isUserIndependent, RULE_KINDS, type PushAction, type PushCondition, type PushRule, type PushRuleset } from './rules.js';
import { objectOrEmpty } from '../../core/json-values.js';

export interface PushRoomContext {
  /** Joined members, local and remote. */
  memberCount: number;
  /** The sender's power level, or undefined when unknown (then `sender_notification_permission` fails). */
  senderPowerLevel: number | undefined;
  /** `content.notifications` of the room's power levels, as integers. */
  notificationLevels: Readonly<Record<string, number>>;
}

const LEGACY_MENTION_RULES = new Set(['.m.rule.contains_display_name', '.m.rule.roomnotif', '.m.rule.contains_user_name']);
const LEGACY_ACTIONS = new Set(['dont_notify', 'coalesce']);

/** Splits a dot-separated property path: `\.` is a literal dot and `\\` a backslash; other escapes stay as they are. */
export function splitPropertyPath(path: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i] as string;
    const next = path[i + 1];
    if (c === '\\' && (next === '.' || next === '\\')) {
      cur += next;
      i++;
    } else if (c === '.') {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

const pathCache = new Map<string, string[]>();

/** The value at a dot-separated path, or undefined when any step is missing. */
export function propertyAt(obj: JsonObject, path: string): JsonValue | undefined {
  let parts = pathCache.get(path);
  if (!parts) {
    parts = splitPropertyPath(path);
    if (pathCache.size > 1000) pathCache.clear();
    pathCache.set(path, parts);
  }
  let cur: JsonValue | undefined = obj;
  for (const p of parts) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, p)) return undefined;
    cur = (cur as JsonObject)[p];
  }
  return cur;
}

type Matcher = (lowercased: string) => boolean;
const globCache = new Map<string, Matcher>();

const WORD_CHAR = /[A-Za-z0-9_]/;
const isWordChar = (c: string | undefined) => c !== undefined && WORD_CHAR.test(c);

/**
 * A case-insensitive glob matcher (`*` any run, `?` one character). `word`
 * matches any substring that starts and ends at a word boundary (anything
 * outside `[A-Za-z0-9_]`), as the spec asks for `content.body`. The matcher
 * takes an already lower-cased string.
 *
 * Globs with wildcards run as a state machine over the input, never as a
 * backtracking regular expression: a rule such as `a*a*a*a*b` against a
 * 64 KiB body costs O(body x pattern), not exponential time, so one user's
 * rule cannot stall the server on every message of a room.
 */
export function globMatcher(glob: string, word: boolean): Matcher {
  const cacheKey = `${word ? 'w' : 'a'}${glob}`;
  const hit = globCache.get(cacheKey);
  if (hit) return hit;
  const lower = glob.toLowerCase();
  let m: Matcher;
  if (!/[*?]/.test(lower)) {
    m = word ? (s) => wordBounded(s, lower) : (s) => s === lower;
  } else {
    const tokens = Array.from(lower);
    // Every literal run must occur in the input: a cheap test before the machine runs.
    const literals = lower.split(/[*?]+/).filter((x) => x !== '');
    const longest = literals.reduce((a, b) => (b.length > a.length ? b : a), '');
    m = (s) => (longest === '' || s.includes(longest)) && runGlob(tokens, Array.from(s), word);
  }
  // Big enough for a room of 20,000 local members' own localpart rules without thrashing.
  if (globCache.size > 20_000) globCache.clear();
  globCache.set(cacheKey, m);
  return m;
}

/**
 * Simulates the glob's automaton: state k means "the first k tokens have
 * matched". Whole mode starts once at 0 and must end in the last state at
 * the end of the input; word mode may start at every word-boundary position
 * and accepts at any word-boundary position.
 */
function runGlob(tokens: readonly string[], input: readonly string[], word: boolean): boolean {
  const m = tokens.length;
  let cur = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  const close = (set: Uint8Array) => {
    for (let k = 0; k < m; k++) if (set[k] && tokens[k] === '*') set[k + 1] = 1;
  };
  const startAt = (i: number) => !word || i === 0 || !isWordChar(input[i - 1]) || !isWordChar(input[i]);
  const endAt = (j: number) => !word || j === input.length || !isWordChar(input[j]) || !isWordChar(input[j - 1]);
  for (let i = 0; ; i++) {
    if (i === 0 || (word && startAt(i))) {
      cur[0] = 1;
      close(cur);
    }
    if (cur[m] && endAt(i) && (word || i === input.length)) return true;
    if (i === input.length) return false;
    const ch = input[i] as string;
    next.fill(0);
    let any = false;
    for (let k = 0; k < m; k++) {
      if (!cur[k]) continue;
      const t = tokens[k];
      if (t === '*') next[k] = 1;
      else if (t === '?' || t === ch) next[k + 1] = 1;
      else continue;
      any = true;
    }
    close(next);
    [cur, next] = [next, cur];
    if (!any && !word) return false;
  }
}

function isSimpleValue(v: JsonValue | undefined): v is string | number | boolean | null {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v));
}

const MEMBER_COUNT = /^([=<>]*)([0-9]+)$/;

export class PushEvaluator {
  private readonly content: JsonObject;
  private readonly hasMentions: boolean;
  private lowerBody: string | undefined;
  /** Whether each shared server-default rule matches this event: the same for every user, so thousands of members share one answer. */
  private readonly sharedMemo = new Map<PushRule, boolean>();

  constructor(
    private readonly event: JsonObject,
    private readonly room: PushRoomContext,
  ) {
    const c = event['content'];
    this.content = objectOrEmpty(c);
    this.hasMentions = Object.hasOwn(this.content, 'm.mentions');
  }

  /** The actions of the first enabled rule that matches, legacy actions dropped; [] when none matches. */
  run(ruleset: PushRuleset, userId: string, displayName?: string | null): PushAction[] {
    for (const kind of RULE_KINDS) {
      for (const rule of ruleset[kind]) {
        if (!rule.enabled) continue;
        if (this.hasMentions && rule.default && LEGACY_MENTION_RULES.has(rule.rule_id)) continue;
        let hit: boolean | undefined;
        if (isUserIndependent(rule)) {
          hit = this.sharedMemo.get(rule);
          if (hit === undefined) this.sharedMemo.set(rule, (hit = this.ruleMatches(kind, rule, userId, undefined)));
        } else {
          hit = this.ruleMatches(kind, rule, userId, displayName ?? undefined);
        }
        if (hit) {
          return activeActions(rule);
        }
      }
    }
    return [];
  }

  private ruleMatches(kind: (typeof RULE_KINDS)[number], rule: PushRule, userId: string, displayName: string | undefined): boolean {
    switch (kind) {
      case 'room':
        return this.event['room_id'] === rule.rule_id;
      case 'sender':
        return this.event['sender'] === rule.rule_id;
      case 'content':
        return typeof rule.pattern === 'string' && this.eventMatch('content.body', rule.pattern);
      default:
        return (rule.conditions ?? []).every((c) => this.matches(c, userId, displayName));
    }
  }

  /** Whether one condition holds for this event and user. */
  matches(c: PushCondition, userId: string, displayName?: string): boolean {
    switch (c.kind) {
      case 'event_match':
        return typeof c.key === 'string' && typeof c.pattern === 'string' && this.eventMatch(c.key, c.pattern);
      case 'event_property_is': {
        if (typeof c.key !== 'string' || !isSimpleValue(c.value)) return false;
        const v = propertyAt(this.event, c.key);
        return isSimpleValue(v) && v === c.value;
      }
      case 'event_property_contains': {
        if (typeof c.key !== 'string' || !isSimpleValue(c.value)) return false;
        const v = propertyAt(this.event, c.key);
        return Array.isArray(v) && v.some((x) => isSimpleValue(x) && x === c.value);
      }
      case 'contains_display_name': {
        if (!displayName) return false; // an empty name would match everything
        const body = this.body();
        if (body === undefined) return false;
        // The name is matched as written: `*` or `?` in a display name are not wildcards.
        const literal = displayName.toLowerCase();
        return body.includes(literal) && wordBounded(body, literal);
      }
      case 'room_member_count': {
        const m = typeof c.is === 'string' ? MEMBER_COUNT.exec(c.is) : null;
        if (!m) return false;
        const n = Number(m[2]);
        const count = this.room.memberCount;
        switch (m[1]) {
          case '':
          case '==':
            return count === n;
          case '<':
            return count < n;
          case '>':
            return count > n;
          case '>=':
            return count >= n;
          case '<=':
            return count <= n;
          default:
            return false;
        }
      }
      case 'sender_notification_permission': {
        if (typeof c.key !== 'string' || this.room.senderPowerLevel === undefined) return false;
        const required = Object.hasOwn(this.room.notificationLevels, c.key) ? (this.room.notificationLevels[c.key] as number) : 50;
        return this.room.senderPowerLevel >= required;
      }
      default:
        return false; // unknown (or retired, like `device`) conditions never match
    }
  }

  private body(): string | undefined {
    if (this.lowerBody === undefined) {
      const b = this.content['body'];
      if (typeof b !== 'string') return undefined;
      this.lowerBody = b.toLowerCase();
    }
    return this.lowerBody;
  }

  private eventMatch(key: string, pattern: string): boolean {
    if (key === 'content.body') {
      const body = this.body();
      return body !== undefined && globMatcher(pattern, true)(body);
    }
    const v = propertyAt(this.event, key);
    return typeof v === 'string' && globMatcher(pattern, false)(v.toLowerCase());
  }
}

const ACTIVE_ACTIONS = new WeakMap<PushRule, PushAction[]>();

/** A rule's actions without the legacy ones, computed once per rule object (callers must not change the array). */
function activeActions(rule: PushRule): PushAction[] {
  let a = ACTIVE_ACTIONS.get(rule);
  if (!a) ACTIVE_ACTIONS.set(rule, (a = rule.actions.filter((x) => !(typeof x === 'string' && LEGACY_ACTIONS.has(x)))));
  return a;
}

/** Whether `needle` occurs in `haystack` with a word boundary (or a non-word character) on each side. */
function wordBounded(haystack: string, needle: string): boolean {
  if (needle === '') return false;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) {
    const before = i === 0 ? '' : (haystack[i - 1] as string);
    const after = i + needle.length >= haystack.length ? '' : (haystack[i + needle.length] as string);
    const first = needle[0] as string;
    const last = needle[needle.length - 1] as string;
    const startOk = before === '' || !WORD_CHAR.test(before) || !WORD_CHAR.test(first);
    const endOk = after === '' || !WORD_CHAR.test(after) || !WORD_CHAR.test(last);
    if (startOk && endOk) return true;
  }
  return false;
}

/** Whether actions notify. */
export function notifies(actions: readonly PushAction[]): boolean {
  return actions.includes('notify');
}

/** Whether actions set the highlight tweak (no value, or `true`). */
export function highlights(actions: readonly PushAction[]): boolean {
  return actions.some((a) => typeof a === 'object' && a !== null && a['set_tweak'] === 'highlight' && (a['value'] === undefined || a['value'] === true));
}
