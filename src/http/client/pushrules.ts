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
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { JsonObject } from '../../core/pdu.js';
import { MatrixError } from '../../matrix-error.js';
import { isRuleKind, type RuleKind } from '../../services/push/rules.js';
import { checkActions, checkNewRuleId, checkRuleBody } from '../../services/push/validate.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from './session-helpers.js';
import { jsonObjectBody } from '../json-body.js';

type RuleParams = { Params: { kind: string; ruleId: string }; Querystring: Record<string, unknown> };

function kindOf(kind: string): RuleKind {
  if (!isRuleKind(kind)) throw new MatrixError(400, 'M_INVALID_PARAM', `Unknown push rule kind: ${kind}`);
  return kind;
}

function queryString(req: FastifyRequest<RuleParams>, key: string): string | undefined {
  const v = req.query?.[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new MatrixError(400, 'M_INVALID_PARAM', `${key} must be given once`);
  return v;
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

    app.put<RuleParams>(`${base}/global/:kind/:ruleId`, async (req) => {
      const requester = await requireUser(ctx, req);
      const kind = kindOf(req.params.kind);
      const { ruleId } = req.params;
      checkNewRuleId(ruleId);
      const rule = checkRuleBody(kind, jsonObjectBody(req) as JsonObject);
      const before = queryString(req, 'before');
      const after = queryString(req, 'after');
      await push.putRule(requester.userId, kind, ruleId, rule, { before, after });
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

    app.put<RuleParams>(`${base}/global/:kind/:ruleId/enabled`, async (req) => {
      const requester = await requireUser(ctx, req);
      const kind = kindOf(req.params.kind);
      // Synapse also takes a bare `true` / `false` as the body (older clients send one).
      const enabled = typeof req.body === 'boolean' ? req.body : jsonObjectBody(req)['enabled'];
      if (enabled === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing enabled');
      if (typeof enabled !== 'boolean') throw new MatrixError(400, 'M_INVALID_PARAM', "Value for 'enabled' must be boolean");
      await push.setEnabled(requester.userId, kind, req.params.ruleId, enabled);
      return {};
    });

    app.get<RuleParams>(`${base}/global/:kind/:ruleId/actions`, async (req) => {
      const requester = await requireUser(ctx, req);
      const rule = await push.getRule(requester.userId, kindOf(req.params.kind), req.params.ruleId);
      return { actions: rule.actions };
    });

    app.put<RuleParams>(`${base}/global/:kind/:ruleId/actions`, async (req) => {
      const requester = await requireUser(ctx, req);
      const kind = kindOf(req.params.kind);
      const body = jsonObjectBody(req);
      if (body['actions'] === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing actions');
      await push.setActions(requester.userId, kind, req.params.ruleId, checkActions(body['actions']));
      return {};
    });
  }
};
