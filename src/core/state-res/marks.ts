/**
 * Per-event scratch values for a graph that grows while it is walked: a
 * typed array that reads 0 past its end and grows on write.
 */
export class Marks {
  private buf: Int32Array;
  constructor(capacity = 1024) {
    this.buf = new Int32Array(Math.max(16, capacity));
  }

  get(i: number): number {
    return i < this.buf.length ? this.buf[i]! : 0;
  }

  set(i: number, v: number): void {
    if (i >= this.buf.length) {
      let n = this.buf.length * 2;
      while (n <= i) n *= 2;
      const next = new Int32Array(n);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[i] = v;
  }
}
