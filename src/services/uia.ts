/**
 * User-interactive authentication (the spec's UIA): an endpoint names the
 * flows it accepts; each request either completes one stage of a session
 * or is answered 401 with the flows, params, session id and the stages
 * completed so far. Stage checkers are registered by the areas that own
 * them (registration tokens, passwords, ...).
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { MatrixError } from '../matrix-error.js';
import type { Schema } from '../storage/schema.js';
import { completedStages, createUiaSession, deleteExpiredUiaSessions, getUiaSession, markStageCompleted, type UiaSessionRow } from '../storage/uia.js';
import type { Requester } from './auth.js';
import { isJsonObject } from '../core/json-values.js';

/** Synapse forgets UIA sessions after two days. */
export const UIA_SESSION_LIFETIME_MS = 2 * 24 * 3600 * 1000;

export interface StageContext {
  session: UiaSessionRow;
  requester?: Requester;
}

/** Checks one stage's `auth` dict; returns what to remember (truthy), or throws a MatrixError. */
export type StageChecker = (auth: Record<string, unknown>, ctx: StageContext) => Promise<unknown>;

/** The 401 body: no errcode on the first round, errcode+error when a stage failed. */
export class UiaRequired extends MatrixError {
  constructor(
    readonly body: { flows: { stages: string[] }[]; params: Record<string, unknown>; session: string; completed?: string[] },
    failure?: MatrixError,
  ) {
    super(401, failure?.errcode ?? 'M_UNAUTHORIZED', failure?.message ?? 'User-interactive authentication required');
    this.failure = failure;
  }
  readonly failure: MatrixError | undefined;

  override toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.body };
    if (this.failure) {
      out.errcode = this.failure.errcode;
      out.error = this.failure.message;
    }
    return out;
  }
}

export interface UiaRequest {
  /** The request path without query, as the session is bound to it. */
  uri: string;
  method: string;
  body: Record<string, unknown> | undefined;
  description?: string;
}

export interface UiaResult {
  sessionId: string;
  /** Stage type to what its checker returned. */
  completed: Record<string, unknown>;
  /** The body of the request that opened the session (registration reuses it). */
  clientdict: Record<string, unknown>;
}

export class UiaService {
  private readonly stages = new Map<string, StageChecker>();
  private readonly params = new Map<string, () => unknown>();
  private lastSweep = 0;

  constructor(private readonly db: Kysely<Schema>) {
    this.stages.set('m.login.dummy', async () => true);
  }

  registerStage(type: string, checker: StageChecker, params?: () => unknown): void {
    this.stages.set(type, checker);
    if (params) this.params.set(type, params);
  }

  /**
   * Runs UIA for a request against `flows` (each a list of stage types).
   * Resolves when some flow is complete; otherwise throws UiaRequired (401).
   */
  async authenticate(req: UiaRequest, flows: string[][], requester?: Requester, now = Date.now()): Promise<UiaResult> {
    await this.sweep(now);
    const auth = req.body?.['auth'];
    const authDict = isJsonObject(auth) ? auth : undefined;
    const { auth: _ignored, ...clientdict } = req.body ?? {};

    let session: UiaSessionRow | undefined;
    const sid = authDict?.['session'];
    if (typeof sid === 'string' && sid !== '') {
      session = await getUiaSession(this.db, sid);
      if (!session || now - session.creation_time > UIA_SESSION_LIFETIME_MS) {
        throw new MatrixError(400, 'M_UNKNOWN', 'Unknown session ID');
      }
      if (session.uri !== req.uri || session.method !== req.method) {
        throw new MatrixError(403, 'M_FORBIDDEN', 'Requested operation has changed during the UI authentication session.');
      }
    } else {
      session = {
        session_id: randomBytes(18).toString('base64url'),
        creation_time: now,
        uri: req.uri,
        method: req.method,
        description: req.description ?? '',
        clientdict,
        serverdict: {},
      };
      await createUiaSession(this.db, session);
    }

    let failure: MatrixError | undefined;
    const type = authDict?.['type'];
    if (authDict && typeof type === 'string') {
      const allowed = flows.some((f) => f.includes(type));
      const checker = this.stages.get(type);
      if (!allowed || !checker) {
        failure = new MatrixError(400, 'M_UNRECOGNIZED', `Unrecognised login type ${type}`);
      } else {
        try {
          const result = await checker(authDict, { session, requester });
          await markStageCompleted(this.db, session.session_id, type, result ?? true);
        } catch (err) {
          if (!(err instanceof MatrixError)) throw err;
          failure = err;
        }
      }
    }

    const completed = await completedStages(this.db, session.session_id);
    if (flows.some((f) => f.every((s) => s in completed))) {
      return { sessionId: session.session_id, completed, clientdict: session.clientdict };
    }
    const params: Record<string, unknown> = {};
    for (const f of flows) for (const s of f) if (this.params.has(s)) params[s] = this.params.get(s)?.();
    const body: UiaRequired['body'] = { flows: flows.map((stages) => ({ stages })), params, session: session.session_id };
    const done = Object.keys(completed);
    if (done.length > 0) body.completed = done;
    throw new UiaRequired(body, failure);
  }

  private async sweep(now: number): Promise<void> {
    if (now - this.lastSweep < 3600_000) return;
    this.lastSweep = now;
    await deleteExpiredUiaSessions(this.db, now - UIA_SESSION_LIFETIME_MS);
  }
}
