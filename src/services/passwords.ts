/**
 * Password hashing as Synapse does it: bcrypt over password + pepper
 * (`password_config.pepper`), `bcrypt_rounds` rounds. Synapse's `$2b$`
 * hashes verify as they are, so a database moved over keeps its passwords.
 *
 * bcryptjs (pure JS) rather than a native binding: native bindings ship
 * per-platform packages that the lockfile cannot pin for every platform
 * here, and at 12 rounds bcryptjs costs ~340 ms against ~290 ms native.
 * The work runs on worker threads, so a burst of logins does not stall
 * every other request on the event loop (bench/login.ts measures both).
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string | null | undefined): Promise<boolean>;
  close(): Promise<void>;
}

const HASH_SHAPE = /^\$2[abxy]\$\d\d\$/;

/** The worker's code, as CommonJS text: it loads bcryptjs from the path the main thread resolved. */
function workerSource(bcryptPath: string): string {
  return `
const { parentPort } = require('node:worker_threads');
const bcrypt = require(${JSON.stringify(bcryptPath)});
parentPort.on('message', (m) => {
  try {
    const result = m.op === 'hash' ? bcrypt.hashSync(m.password, m.arg) : bcrypt.compareSync(m.password, m.arg);
    parentPort.postMessage({ id: m.id, result });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
});`;
}

interface Pending {
  resolve: (v: string | boolean) => void;
  reject: (e: Error) => void;
}

class WorkerPool {
  private readonly workers: { worker: Worker; busy: number }[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(size: number) {
    const source = workerSource(createRequire(import.meta.url).resolve('bcryptjs'));
    for (let i = 0; i < size; i++) {
      const worker = new Worker(source, { eval: true });
      worker.unref();
      const slot = { worker, busy: 0 };
      worker.on('message', (m: { id: number; result?: string | boolean; error?: string }) => {
        slot.busy--;
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (!p) return;
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.result as string | boolean);
      });
      this.workers.push(slot);
    }
  }

  run(op: 'hash' | 'verify', password: string, arg: string | number): Promise<string | boolean> {
    const slot = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    slot.busy++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, op, password, arg });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/** One worker per spare core (at least one, at most four). */
export function defaultPoolSize(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export function passwordHasher(rounds: number, pepper: string, poolSize = defaultPoolSize()): PasswordHasher {
  let pool: WorkerPool | undefined;
  const workers = () => (pool ??= new WorkerPool(poolSize));
  return {
    hash: async (password) => (await workers().run('hash', password + pepper, rounds)) as string,
    verify: async (password, hash) => {
      if (!hash || !HASH_SHAPE.test(hash)) return false;
      try {
        return (await workers().run('verify', password + pepper, hash)) === true;
      } catch {
        return false;
      }
    },
    close: async () => {
      await pool?.close();
      pool = undefined;
    },
  };
}
