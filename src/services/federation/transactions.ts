/**
 * Incoming federation transactions (`PUT /_matrix/federation/v1/send/{txnId}`):
 * at most 50 PDUs and 100 EDUs each, as the spec limits them; the PDUs go
 * to FederationEvents, each EDU to the handler registered for its type
 * (an unknown type is ignored, as the spec asks).
 *
 * A transaction is handled once per (origin, txnId): a retry while it runs
 * waits for the same answer, and one after it answers the same again (kept
 * for an hour, the most recent 1,000). Transactions from one origin are
 * handled one after another, as Synapse does, so a server's events keep
 * their order across transactions.
 */
import type { Logger } from 'pino';
import { isJsonObject } from '../../core/json-values.js';
import { MatrixError } from '../../matrix-error.js';
import type { FederationEvents, PduResult } from './inbound-events.js';

export const MAX_TXN_PDUS = 50;
export const MAX_TXN_EDUS = 100;
const KEEP_MS = 60 * 60 * 1000;
const KEEP_MAX = 1000;

export type EduHandler = (origin: string, content: Record<string, unknown>) => Promise<void>;

export interface TransactionResponse {
  pdus: Record<string, PduResult>;
}

export class FederationTransactions {
  private readonly answered = new Map<string, { at: number; response: Promise<TransactionResponse> }>();
  private readonly perOrigin = new Map<string, Promise<unknown>>();
  private readonly eduHandlers = new Map<string, EduHandler>();

  constructor(
    private readonly events: Pick<FederationEvents, 'receivePdus'>,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The handler of an EDU type (m.typing, m.receipt, …); registered by the service that owns it. */
  onEdu(type: string, handler: EduHandler): void {
    this.eduHandlers.set(type, handler);
  }

  /** Handles a transaction's body (already authenticated as `origin`); 400 M_BAD_JSON for one that is not a transaction. */
  receive(origin: string, txnId: string, body: Record<string, unknown>): Promise<TransactionResponse> {
    const pdus = body['pdus'];
    const edus = body['edus'] ?? [];
    if (!Array.isArray(pdus)) throw new MatrixError(400, 'M_BAD_JSON', 'pdus must be an array');
    if (!Array.isArray(edus)) throw new MatrixError(400, 'M_BAD_JSON', 'edus must be an array');
    if (pdus.length > MAX_TXN_PDUS || edus.length > MAX_TXN_EDUS) {
      throw new MatrixError(400, 'M_BAD_JSON', `A transaction holds at most ${MAX_TXN_PDUS} PDUs and ${MAX_TXN_EDUS} EDUs`);
    }
    const key = `${origin}\u0000${txnId}`;
    this.forgetOld();
    const seen = this.answered.get(key);
    if (seen) return seen.response;
    const response = this.inOriginQueue(origin, () => this.handle(origin, pdus, edus));
    this.answered.set(key, { at: this.now(), response });
    // A transaction that failed as a whole may be retried.
    response.catch(() => this.answered.delete(key));
    return response;
  }

  private async handle(origin: string, pdus: unknown[], edus: unknown[]): Promise<TransactionResponse> {
    const results = await this.events.receivePdus(origin, pdus);
    for (const edu of edus) {
      if (!isJsonObject(edu) || typeof edu['edu_type'] !== 'string') continue;
      const handler = this.eduHandlers.get(edu['edu_type']);
      if (!handler) continue;
      try {
        await handler(origin, isJsonObject(edu['content']) ? edu['content'] : {});
      } catch (err) {
        this.logger.info({ origin, eduType: edu['edu_type'], err: err instanceof Error ? err.message : String(err) }, 'could not handle an EDU');
      }
    }
    return { pdus: results };
  }

  private async inOriginQueue<T>(origin: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.perOrigin.get(origin) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    this.perOrigin.set(origin, run);
    try {
      return await run;
    } finally {
      if (this.perOrigin.get(origin) === run) this.perOrigin.delete(origin);
    }
  }

  private forgetOld(): void {
    const cutoff = this.now() - KEEP_MS;
    for (const [k, v] of this.answered) {
      if (v.at >= cutoff && this.answered.size <= KEEP_MAX) break;
      this.answered.delete(k);
    }
  }
}
