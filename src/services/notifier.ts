/**
 * Wakes long-polling /sync requests. In one process this is an in-memory
 * map of waiting users; several workers sharing a database would relay the
 * same calls over PostgreSQL LISTEN/NOTIFY (not built yet).
 */
export class Notifier {
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly listeners = new Set<(userIds: readonly string[]) => void>();
  private shutDown = false;

  /** True once the server is shutting down: long-polls answer at once instead of waiting. */
  get closed(): boolean {
    return this.shutDown;
  }

  /** Wakes every waiting request, and makes later waits return at once (shutdown). */
  close(): void {
    this.shutDown = true;
    for (const set of [...this.waiting.values()]) for (const wake of [...set]) wake();
  }

  /** Resolves when `userId` is notified, the timeout passes, or `signal` aborts; true when notified. */
  wait(userId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.shutDown) return Promise.resolve(true);
    return new Promise((resolve) => {
      let set = this.waiting.get(userId);
      if (!set) this.waiting.set(userId, (set = new Set()));
      const waiters = set;
      const done = (notified: boolean) => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0 && this.waiting.get(userId) === waiters) this.waiting.delete(userId);
        signal?.removeEventListener('abort', onAbort);
        resolve(notified);
      };
      const wake = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
      waiters.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  notifyUsers(userIds: Iterable<string>): void {
    const users = this.listeners.size > 0 ? [...userIds] : userIds;
    for (const u of users) {
      const set = this.waiting.get(u);
      if (set) for (const wake of [...set]) wake();
    }
    for (const listener of this.listeners) {
      try {
        listener(users as string[]);
      } catch {
        // A listener's failure is its own; the waiting syncs are already woken.
      }
    }
  }

  /**
   * Calls `listener` with the users of every notifyUsers call (each made
   * after a commit), e.g. so the pusher loop wakes; returns the unsubscribe.
   */
  onNotify(listener: (userIds: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** How many requests are waiting (for tests and metrics). */
  waiters(): number {
    let n = 0;
    for (const s of this.waiting.values()) n += s.size;
    return n;
  }
}
