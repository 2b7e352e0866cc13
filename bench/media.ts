/**
 * Media repository figures, on the real server over HTTP (in this process,
 * so process RSS is the server's plus this script's). Prints figures only.
 * Run: npx tsx bench/media.ts
 *
 * - uploads per second of a 1 MB image, one client after another, then 4
 *   clients at once;
 * - thumbnail generation time per configured size, cold (each on a fresh
 *   upload), for a 12-megapixel JPEG and a 2-megapixel PNG;
 * - process RSS while thumbnailing many large images, 8 requests at a time
 *   (one thumbnail is made at a time; the rest queue).
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), as the
 * integration tests do; AXON_TEST_DB=embedded runs it on PGlite instead.
 */
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { startTestServer, type TestServer } from '../test/helpers/server.js';
import { createUser } from '../test/helpers/users.js';

process.env.AXON_TEST_DB ??= 'postgres';

const SEQUENTIAL = 40;
const CONCURRENCY = 4;
const CONCURRENT_TOTAL = 40;
const MANY = 24;
const MANY_CONCURRENCY = 8;

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const ms = (n: number) => `${n.toFixed(1)} ms`;

async function noiseImage(width: number, height: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  // Random pixels at a tenth of the size, scaled up: photo-like detail without a huge file.
  const w = Math.max(1, Math.round(width / 10));
  const h = Math.max(1, Math.round(height / 10));
  const img = sharp(randomBytes(w * h * 3), { raw: { width: w, height: h, channels: 3 } }).resize(width, height, { kernel: 'cubic' });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 90 }).toBuffer();
}

/** A PNG of pure noise close to `bytes` long (noise does not compress). */
async function pngOfSize(bytes: number): Promise<Buffer> {
  const side = Math.round(Math.sqrt(bytes / 3));
  return sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

async function upload(t: TestServer, token: string, body: Buffer, type: string): Promise<string> {
  const res = await fetch(`${t.url}/_matrix/media/v3/upload`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body });
  const json = (await res.json()) as { content_uri?: string };
  if (res.status !== 200 || !json.content_uri) throw new Error(`upload answered ${res.status} ${JSON.stringify(json)}`);
  return json.content_uri.split('/').pop()!;
}

async function thumb(t: TestServer, token: string, id: string, w: number, h: number, method: string): Promise<number> {
  const start = performance.now();
  const res = await fetch(`${t.url}/_matrix/client/v1/media/thumbnail/${t.config.server_name}/${id}?width=${w}&height=${h}&method=${method}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`thumbnail answered ${res.status}`);
  return performance.now() - start;
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})`);
  const t = await startTestServer({ yaml: { max_upload_size: '100M' } });
  try {
    const user = await createUser(t, 'bench');
    const token = user.accessToken;
    const rssStart = process.memoryUsage().rss;

    // Uploads.
    const oneMb = await pngOfSize(1024 * 1024);
    console.log(`\nupload of a ${(oneMb.length / 1024 / 1024).toFixed(2)} MB PNG:`);
    await upload(t, token, oneMb, 'image/png'); // warm-up
    let start = performance.now();
    for (let i = 0; i < SEQUENTIAL; i++) await upload(t, token, oneMb, 'image/png');
    let elapsed = (performance.now() - start) / 1000;
    console.log(`  sequential: ${(SEQUENTIAL / elapsed).toFixed(1)} uploads/s (${((SEQUENTIAL * oneMb.length) / 1024 / 1024 / elapsed).toFixed(1)} MB/s)`);
    start = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < CONCURRENT_TOTAL) {
          next++;
          await upload(t, token, oneMb, 'image/png');
        }
      }),
    );
    elapsed = (performance.now() - start) / 1000;
    console.log(`  ${CONCURRENCY} clients:  ${(CONCURRENT_TOTAL / elapsed).toFixed(1)} uploads/s (${((CONCURRENT_TOTAL * oneMb.length) / 1024 / 1024 / elapsed).toFixed(1)} MB/s)`);

    // Cold thumbnails, per configured size.
    const sources: [string, Buffer, string][] = [
      ['12 Mpx JPEG 4000x3000', await noiseImage(4000, 3000, 'jpeg'), 'image/jpeg'],
      ['2 Mpx PNG 1600x1200', await noiseImage(1600, 1200, 'png'), 'image/png'],
    ];
    for (const [label, bytes, type] of sources) {
      console.log(`\ncold thumbnail of a ${label} (${(bytes.length / 1024 / 1024).toFixed(1)} MB), per size:`);
      for (const s of t.config.thumbnail_sizes) {
        const id = await upload(t, token, bytes, type);
        const cold = await thumb(t, token, id, s.width, s.height, s.method);
        const warm = await thumb(t, token, id, s.width, s.height, s.method);
        console.log(`  ${`${s.width}x${s.height} ${s.method}`.padEnd(16)} cold ${ms(cold).padStart(9)}   cached ${ms(warm)}`);
      }
    }

    // RSS while thumbnailing many large images at once.
    const big = await noiseImage(4000, 3000, 'jpeg');
    const ids: string[] = [];
    for (let i = 0; i < MANY; i++) ids.push(await upload(t, token, big, 'image/jpeg'));
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    start = performance.now();
    let i = 0;
    const times: number[] = [];
    await Promise.all(
      Array.from({ length: MANY_CONCURRENCY }, async () => {
        while (i < ids.length) {
          const id = ids[i++]!;
          times.push(await thumb(t, token, id, 800, 600, 'scale'));
        }
      }),
    );
    elapsed = performance.now() - start;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const after = process.memoryUsage().rss;
    console.log(`\n${MANY} cold 800x600 thumbnails of 12 Mpx JPEGs, ${MANY_CONCURRENCY} requests at a time:`);
    console.log(`  ${(elapsed / MANY).toFixed(1)} ms each on average (${(MANY / (elapsed / 1000)).toFixed(1)}/s); slowest answer ${ms(Math.max(...times))} (queued)`);
    console.log(`  process RSS: at start ${mib(rssStart)}, before ${mib(before)}, peak ${mib(peak)}, after ${mib(after)}`);
  } finally {
    await t.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
