/**
 * What the request-body parser costs per request: the plain `JSON.parse` it
 * had before against the checks it makes now (UTF-8 validity, the depth scan,
 * the surrogate walk when the text has a `\ud` escape). Prints figures only.
 * Run: npx tsx bench/json-body.ts
 */
import { isUtf8 } from 'node:buffer';
import { parseJsonBody } from '../src/core/json-parse.js';
import { MAX_BODY_DEPTH } from '../src/http/json-body.js';

/** A message body of about 2 KB as clients send it: rich text, mentions, a reply. */
function messageBody(emoji: string): Buffer {
  const para = `Did you see the release notes ${emoji}? The new sync is a lot faster on small servers, and the media repository streams uploads now. `;
  return Buffer.from(
    JSON.stringify({
      msgtype: 'm.text',
      body: para.repeat(6),
      format: 'org.matrix.custom.html',
      formatted_body: `<p>${para.repeat(6)}</p><blockquote><a href="https://matrix.to/#/@bob:example.org">Bob</a></blockquote>`,
      'm.mentions': { user_ids: ['@bob:example.org', '@carol:example.org'] },
      'm.relates_to': { 'm.in_reply_to': { event_id: '$' + 'A'.repeat(43) } },
    }).replace(emoji, emoji === '🎉' ? '\\ud83c\\udf89' : emoji),
  );
}

const before = (buf: Buffer) => JSON.parse(buf.toString('utf8')) as unknown;
const after = (buf: Buffer) => {
  if (!isUtf8(buf)) throw new Error('not UTF-8');
  return parseJsonBody(buf.toString('utf8'), MAX_BODY_DEPTH);
};

/** Microseconds of CPU per call: the median of 7 rounds of `n` calls, after a warm-up round. */
function micros(f: () => unknown, n: number): number {
  const rounds: number[] = [];
  for (let r = 0; r < 8; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) f();
    const c = process.cpuUsage(c0);
    if (r > 0) rounds.push((c.user + c.system) / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[3]!;
}

function line(name: string, us: number): void {
  process.stdout.write(`${name.padEnd(58)}${us.toFixed(2).padStart(9)} µs\n`);
}

const plain = messageBody('!');
const escaped = messageBody('🎉');
const deep = Buffer.from('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000));
const refuse = (buf: Buffer) => {
  try {
    return after(buf);
  } catch (err) {
    return err;
  }
};

process.stdout.write(`node ${process.version}; bodies of ${plain.length} and ${escaped.length} bytes; CPU time per call (median of 7)\n\n`);
line(
  'before: JSON.parse (message body)',
  micros(() => before(plain), 20_000),
);
line(
  'after: isUtf8 + depth scan + JSON.parse (message body)',
  micros(() => after(plain), 20_000),
);
line(
  'before: JSON.parse (body with a \\ud83c\\udf89 escape)',
  micros(() => before(escaped), 20_000),
);
line(
  'after: the same + surrogate walk (body with the escape)',
  micros(() => after(escaped), 20_000),
);
line(
  `before: JSON.parse (10,000 levels deep, ${deep.length} bytes)`,
  micros(() => before(deep), 200),
);
line(
  'after: refused by the depth scan (10,000 levels deep)',
  micros(() => refuse(deep), 200),
);
