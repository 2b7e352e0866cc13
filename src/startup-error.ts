/**
 * A start-up failure the operator is expected to fix — a bad config value,
 * a database set up wrongly, a changed server_name, a placeholder secret —
 * as opposed to a bug. main.ts prints each problem as one `axon: …` line,
 * with no stack trace; anything else still prints its stack.
 */
export class StartupError extends Error {
  /** One line each, in the order found. */
  readonly problems: readonly string[];

  /** Problems given as one string with line breaks are one problem per line. */
  constructor(problems: string | readonly string[]) {
    const list = (typeof problems === 'string' ? [problems] : problems).flatMap((p) => p.split('\n'));
    super(list.join('\n'));
    this.name = 'StartupError';
    this.problems = list;
  }
}
