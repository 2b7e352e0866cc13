/** Waits until `check` holds, polling every 100 ms (at most `ms`, default 20 s: a slow machine is not a failure of ordering). */
export async function until(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
