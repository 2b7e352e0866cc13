/**
 * Push rules, under r0 and v3:
 * - GET /pushrules/ ({global}), GET /pushrules/global/, GET /pushrules/global/{kind}/;
 * - GET, PUT (with `before`/`after`), DELETE /pushrules/global/{kind}/{ruleId};
 * - GET, PUT .../{ruleId}/enabled and .../{ruleId}/actions.
 * Server-default rules (ids starting with '.') can be enabled, disabled and
 * given new actions, but not replaced or deleted. Unknown rules are 404
 * M_NOT_FOUND; malformed rules 400 M_INVALID_PARAM (M_MISSING_PARAM when a
 * required key is absent).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { JsonObject } from '../../core/pdu.js';
import { MatrixError } from '../../matrix-error.js';
import { isRuleKind, type RuleKind } from '../../services/push/rules.js';
import { checkActions, checkNewRuleId, checkRuleBody } from '../../services/push/validate.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

type RuleParams = { Params: { kind: string; ruleId: string }; Querystring: { before?: string; after?: string } };

/** PUT a rule: `before` and `after` name another rule, each given once. */
const RULE_QUERY = { type: 'object', properties: { before: { type: 'string' }, after: { type: 'string' } } };

/**
 * PUT .../enabled: `{enabled}` (required, a boolean; M_INVALID_PARAM as
 * Synapse), or a bare `true`/`false`, which Synapse also takes from older
 * clients.
 */
const ENABLED_BODY = {
  if: { type: 'object' },
  then: { type: 'object', required: ['enabled'], properties: { enabled: { type: 'boolean', errcode: 'M_INVALID_PARAM' } } },
};

/** PUT .../actions: `{actions}` (required, a list; the service checks each action). */
const ACTIONS_BODY = {
  type: 'object',
  required: ['actions'],
  properties: { actions: { type: 'array', errcode: 'M_INVALID_PARAM' } },
};

function kindOf(kind: string): RuleKind {
  if (!isRuleKind(kind)) throw new MatrixError(400, 'M_INVALID_PARAM', `Unknown push rule kind: ${kind}`);
  return kind;
}

/** A `before`/`after` parameter; empty is not given. */
function neighbour(v: string | undefined): string | undefined {
  return v === '' ? undefined : v;
}

export const pushRulesPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const push = ctx.services.push;

  for (const prefix of CLIENT_PREFIXES) {
    const base = `${prefix}/pushrules`;

    app.get(`${base}/`, async (req) => {
      const requester = await requireUser(ctx, req);
      return { global: await push.ruleset(requester.userId) };
    });

    app.get(`${base}/global/`, async (req) => {
      const requester = await requireUser(ctx, req);
      return push.ruleset(requester.userId);
    });

    app.get<{ Params: { kind: string } }>(`${base}/global/:kind/`, async (req) => {
      const requester = await requireUser(ctx, req);
      return (await push.ruleset(requester.userId))[kindOf(req.params.kind)];
    });

    app.get<RuleParams>(`${base}/global/:kind/:ruleId`, async (req) => {
      const requester = await requireUser(ctx, req);
      return push.getRule(requester.userId, kindOf(req.params.kind), req.params.ruleId);
    });

    app.put<RuleParams>(`${base}/global/:kind/:ruleId`, { schema: { querystring: RULE_QUERY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const kind = kindOf(req.params.kind);
      const { ruleId } = req.params;
      checkNewRuleId(ruleId);
      const rule = checkRuleBody(kind, jsonObjectBody(req) as JsonObject);
      await push.putRule(requester.userId, kind, ruleId, rule, { before: neighbour(req.query.before), after: neighbour(req.query.after) });
      return {};
    });

    app.delete<RuleParams>(`${base}/global/:kind/:ruleId`, async (req) => {
      const requester = await requireUser(ctx, req);
      await push.deleteRule(requester.userId, kindOf(req.params.kind), req.params.ruleId);
      return {};
    });

    app.get<RuleParams>(`${base}/global/:kind/:ruleId/enabled`, async (req) => {
      const requester = await requireUser(ctx, req);
      const rule = await push.getRule(requester.userId, kindOf(req.params.kind), req.params.ruleId);
      return { enabled: rule.enabled };
    });

    app.put<RuleParams>(`${base}/global/:kind/:ruleId/enabled`, { schema: { body: ENABLED_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const kind = kindOf(req.params.kind);
      const enabled = typeof req.body === 'boolean' ? req.body : (jsonObjectBody(req) as { enabled: boolean }).enabled;
      await push.setEnabled(requester.userId, kind, req.params.ruleId, enabled);
      return {};
    });

    app.get<RuleParams>(`${base}/global/:kind/:ruleId/actions`, async (req) => {
      const requester = await requireUser(ctx, req);
      const rule = await push.getRule(requester.userId, kindOf(req.params.kind), req.params.ruleId);
      return { actions: rule.actions };
    });

    app.put<RuleParams>(`${base}/global/:kind/:ruleId/actions`, { schema: { body: ACTIONS_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const kind = kindOf(req.params.kind);
      const body = jsonObjectBody(req);
      await push.setActions(requester.userId, kind, req.params.ruleId, checkActions(body['actions']));
      return {};
    });
  }
};
