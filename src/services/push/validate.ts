/**
 * Checks on push rules clients send (PUT /pushrules/...): the spec's shapes,
 * refused with 400 and a Matrix errcode rather than stored half-valid.
 */
import type { JsonObject } from '../../core/pdu.js';
import { MatrixError } from '../../matrix-error.js';
import type { PushAction, PushCondition, RuleKind } from './rules.js';
import { containsNul, isJsonObject } from '../../core/json-values.js';

const invalid = (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg);

/**
 * Actions: `notify`, the legacy `dont_notify` and `coalesce` (accepted and
 * ignored, as the spec asks), or `{set_tweak: string, ...}`.
 */
export function checkActions(v: unknown): PushAction[] {
  if (!Array.isArray(v)) throw invalid('actions must be a list');
  for (const a of v) {
    if (a === 'notify' || a === 'dont_notify' || a === 'coalesce') continue;
    if (isJsonObject(a) && typeof a['set_tweak'] === 'string') continue;
    throw invalid(`Unrecognised action: ${JSON.stringify(a)}`);
  }
  if (containsNul(v)) throw invalid('actions may not contain U+0000');
  return v as PushAction[];
}

/** Conditions: a list of objects, each with a string `kind` (unknown kinds are kept; they never match). */
export function checkConditions(v: unknown): PushCondition[] {
  if (!Array.isArray(v)) throw invalid('conditions must be a list');
  for (const c of v) {
    if (!isJsonObject(c) || typeof c['kind'] !== 'string') throw invalid("Each condition must be an object with a string 'kind'");
  }
  if (containsNul(v)) throw invalid('conditions may not contain U+0000');
  return v as PushCondition[];
}

/** A rule id a user may create: not starting with '.', no slashes or backslashes. */
export function checkNewRuleId(ruleId: string): void {
  if (ruleId === '') throw invalid('rule_id may not be empty');
  if (ruleId.startsWith('.')) throw invalid("rule_ids starting with '.' are reserved for server-default rules");
  if (ruleId.includes('/') || ruleId.includes('\\')) throw invalid('rule_id may not contain slashes');
  if (ruleId.includes('\u0000')) throw invalid('rule_id may not contain U+0000');
}

export interface NewRule {
  actions: PushAction[];
  conditions: PushCondition[] | null;
  pattern: string | null;
}

/** The body of PUT /pushrules/global/{kind}/{ruleId}, checked for its kind. */
export function checkRuleBody(kind: RuleKind, body: JsonObject): NewRule {
  if (body['actions'] === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing actions');
  const actions = checkActions(body['actions']);
  if (kind === 'override' || kind === 'underride') {
    const conditions = body['conditions'] === undefined ? [] : checkConditions(body['conditions']);
    return { actions, conditions, pattern: null };
  }
  if (kind === 'content') {
    if (body['pattern'] === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Content rules need a pattern');
    if (typeof body['pattern'] !== 'string') throw invalid('pattern must be a string');
    if (body['pattern'].includes('\u0000')) throw invalid('pattern may not contain U+0000');
    return { actions, conditions: null, pattern: body['pattern'] };
  }
  return { actions, conditions: null, pattern: null };
}
