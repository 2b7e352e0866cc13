/**
 * Downloads of a reserved (POST /create) media id wait for its content:
 * the PUT that fills it wakes them here, in this process. Waiters also
 * look at the database again now and then, so content put by another
 * process is found too.
 */
export class UploadWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  /** Resolves when `mediaId` is filled here, or after `ms`. */
  wait(mediaId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(mediaId);
      if (!set) this.waiting.set(mediaId, (set = new Set()));
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(mediaId) === waiters) this.waiting.delete(mediaId);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      waiters.add(done);
    });
  }

  notify(mediaId: string): void {
    const set = this.waiting.get(mediaId);
    if (set) for (const wake of [...set]) wake();
  }
}
