/**
 * One computation for many concurrent callers: a caller arriving while a
 * run is under way gets the next run (started after it asked), never the
 * one already going, so what it gets was read after it asked (a sync woken
 * by a commit always sees that commit). A hundred callers at once cost at
 * most two runs.
 */
export class SharedRun<T> {
  private running: Promise<T> | undefined;
  private next: Promise<T> | undefined;

  constructor(private readonly compute: () => Promise<T>) {}

  get(): Promise<T> {
    if (!this.running) {
      const run = this.compute().finally(() => {
        if (this.running === run) this.running = undefined;
      });
      this.running = run;
      return run;
    }
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.get();
      });
    return this.next;
  }
}
