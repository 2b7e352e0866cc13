/** What main.ts prints for a failed command: one line per expected problem, the stack for a bug. */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/args.js';
import { failureText } from '../../src/cli/failure.js';
import { ConfigError } from '../../src/config/errors.js';
import { StartupError } from '../../src/startup-error.js';

describe('failureText', () => {
  it('a StartupError: one `axon:` line per problem, no stack', () => {
    expect(failureText(new StartupError(['first problem', 'second problem']))).toBe('axon: first problem\naxon: second problem\n');
    expect(failureText(new ConfigError('expected an integer', { file: 'h.yaml', key: 'listeners[0].port' }))).toBe('axon: h.yaml: listeners[0].port: expected an integer\n');
    expect(failureText(new UsageError('unknown option --frob'))).toBe('axon: unknown option --frob\n');
    // A message of several lines is several problems, each with its prefix.
    expect(failureText(new ConfigError('media_store_path: not writable\npid_file: not writable'))).toBe('axon: media_store_path: not writable\naxon: pid_file: not writable\n');
  });

  it('a bug, even one with its own error name, prints its stack', () => {
    let bug: unknown;
    try {
      (undefined as unknown as { x: () => void }).x();
    } catch (err) {
      bug = err;
    }
    expect(bug).toBeInstanceOf(TypeError);
    const text = failureText(bug);
    expect(text.split('\n')[0]).toMatch(/^axon: Cannot read properties of undefined/);
    expect(text).toMatch(/^\s+at /m);
  });

  it("a port that is taken: Node's own error, one line", async () => {
    const a = createServer();
    await new Promise<void>((resolve) => a.listen(0, '127.0.0.1', resolve));
    const port = (a.address() as { port: number }).port;
    const b = createServer();
    const err = await new Promise<Error>((resolve) => {
      b.once('error', resolve);
      b.listen(port, '127.0.0.1');
    });
    await new Promise((resolve) => a.close(resolve));
    expect(failureText(err)).toBe(`axon: cannot listen: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
  });
});
