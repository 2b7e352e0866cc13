/**
 * The shipped ops files agree with each other and with the loader: the
 * sample homeserver.yaml loads cleanly, nginx's body limit equals
 * max_upload_size, coturn's secret equals turn_shared_secret, and the unit
 * and Dockerfile start the server the way the brief says.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSize } from '../../src/config/durations.js';
import { loadConfig } from '../../src/config/load.js';
import { loadLogConfig } from '../../src/config/log-config.js';
import { REPO, collector } from './helpers.js';

const read = (rel: string): string => readFileSync(join(REPO, rel), 'utf8');

describe('config/homeserver.yaml (sample production config)', () => {
  const c = collector();
  const config = loadConfig([join(REPO, 'config', 'homeserver.yaml')], { env: {}, ...c });

  it('loads with no unknown keys and nothing ignored', () => {
    // The only warning allowed: /etc/axon/log.yaml is not installed on this machine.
    expect(c.warnings.filter((w) => !w.includes('/etc/axon/log.yaml'))).toEqual([]);
    expect(c.infos).toEqual([]);
  });

  it('is the production shape the guides describe', () => {
    expect(config.database).toMatchObject({ kind: 'postgres', user: 'axon', database: 'axon', host: 'localhost', port: 5432 });
    expect(config.listeners).toHaveLength(1);
    expect(config.listeners[0]).toMatchObject({ port: 8008, x_forwarded: true, tls: false, bind_addresses: ['::1', '127.0.0.1'] });
    expect(config.enable_registration).toBe(true);
    expect(config.registration_requires_token).toBe(true);
    expect(config.serve_server_wellknown).toBe(true);
    expect(config.media_store_path.startsWith('/var/lib/axon/')).toBe(true);
    expect(config.turn_uris.length).toBeGreaterThan(0);
    expect(config.turn_shared_secret).toBeDefined();
  });

  it('nginx client_max_body_size equals max_upload_size', () => {
    const nginx = read('config/nginx/axon.conf');
    const sizes = [...nginx.matchAll(/^\s*client_max_body_size\s+(\S+);/gm)].map((m) => m[1]!);
    expect(sizes.length).toBeGreaterThan(0);
    // nginx's M is also 1024*1024, as Synapse's.
    for (const s of sizes) expect(parseSize(s)).toBe(config.max_upload_size);
  });

  it('coturn static-auth-secret equals turn_shared_secret', () => {
    const coturn = read('config/coturn/turnserver.conf');
    const m = /^static-auth-secret=(.+)$/m.exec(coturn);
    expect(m?.[1]).toBe(config.turn_shared_secret);
    expect(coturn).toMatch(/^use-auth-secret$/m);
    expect(coturn).toMatch(/^realm=example\.com$/m);
    for (const range of ['10.0.0.0-10.255.255.255', '172.16.0.0-172.31.255.255', '192.168.0.0-192.168.255.255', '127.0.0.0-127.255.255.255']) {
      expect(coturn).toContain(`denied-peer-ip=${range}`);
    }
  });

  it('config/log.yaml logs at INFO to stdout (journald under the unit), without a time stamp of its own', () => {
    const spec = loadLogConfig(join(REPO, 'config', 'log.yaml'));
    expect(spec.root).toEqual({ level: 'info', handlers: ['console'], propagate: true });
    expect(spec.handlers.get('console')).toMatchObject({ kind: 'stream', stream: 'stdout' });
    const f = spec.formatters.get('journal');
    expect(f?.kind === 'text' && f.format).not.toContain('asctime');
    expect(spec.warnings).toEqual([]);
  });
});

describe('config/nginx/axon.conf', () => {
  const nginx = read('config/nginx/axon.conf');
  /** The text of each top-level server block, keyed by its first listen port. */
  const servers = new Map<string, string>();
  for (const m of nginx.matchAll(/^server \{\n([\s\S]*?)^\}$/gm)) {
    const port = /listen (\d+)/.exec(m[1]!)?.[1] ?? '';
    const name = /server_name ([^;]+);/.exec(m[1]!)?.[1] ?? '';
    servers.set(`${port} ${name}`, m[1]!);
  }
  const block = (key: string) => {
    const b = servers.get(key);
    expect(b, key).toBeDefined();
    return b ?? '';
  };
  /** A location's body: the lines up to its closing brace. */
  const location = (text: string, head: string) => {
    const at = text.indexOf(`location ${head} {`);
    expect(at, head).toBeGreaterThanOrEqual(0);
    return text.slice(at, text.indexOf('}', at));
  };

  it('has separate blocks for clients (443), federation (8448), the base domain and plain HTTP', () => {
    expect([...servers.keys()].sort()).toEqual(['443 example.com', '443 matrix.example.com', '80 example.com matrix.example.com', '8448 matrix.example.com']);
    expect(block('443 matrix.example.com')).not.toMatch(/listen 8448/);
  });

  it('proxies /, /_matrix, /_synapse/client and well-known on the matrix host to 127.0.0.1:8008, with no URI after the port', () => {
    const main = block('443 matrix.example.com');
    for (const head of ['= /', '/_matrix', '/_synapse/client', '/.well-known/matrix/']) {
      expect(location(main, head)).toContain('proxy_pass http://127.0.0.1:8008;');
    }
    for (const m of nginx.matchAll(/proxy_pass (\S+);/g)) expect(m[1]).toBe('http://127.0.0.1:8008');
    // Set once for the block, inherited by locations that set none of their own.
    expect(main).toContain('proxy_set_header X-Forwarded-For $remote_addr;');
    expect(main).toContain('proxy_set_header X-Forwarded-Proto $scheme;');
    expect(main).toContain('proxy_set_header Host $host:$server_port;');
    expect([...main.matchAll(/^\s+location [^{]*\{[^}]*proxy_set_header/gm)]).toEqual([]);
  });

  it('proxies the admin API only for an allow-list that ends in deny all', () => {
    const admin = location(block('443 matrix.example.com'), '/_synapse/admin');
    const rules = [...admin.matchAll(/^\s*(allow|deny) (\S+);/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(rules).toEqual(['allow 127.0.0.1', 'allow ::1', 'allow 203.0.113.7', 'deny all']);
    expect(admin).toContain('proxy_pass http://127.0.0.1:8008;');
    expect(nginx).toMatch(/REPLACE 203\.0\.113\.7/);
  });

  it('gives /sync (r0, v3, sliding sync) a long read timeout in a regex location, which wins over the /_matrix prefix', () => {
    const sync = location(block('443 matrix.example.com'), '~ ^/_matrix/client/(r0|v3|unstable/org\\.matrix\\.simplified_msc3575)/sync$');
    const timeout = /proxy_read_timeout (\d+)s;/.exec(sync);
    expect(Number(timeout?.[1])).toBeGreaterThanOrEqual(120);
    const re = /^\^(.*)\$$/.exec(/location ~ (\S+) \{/.exec(sync)?.[1] ?? '')?.[1] ?? '';
    const matches = new RegExp(`^${re}$`);
    for (const path of ['/_matrix/client/v3/sync', '/_matrix/client/r0/sync', '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync']) expect(matches.test(path), path).toBe(true);
    expect(matches.test('/_matrix/client/v3/syncx')).toBe(false);
  });

  it('serves only /_matrix on the federation port', () => {
    const fed = block('8448 matrix.example.com');
    expect([...fed.matchAll(/location (\S+) \{/g)].map((m) => m[1])).toEqual(['/_matrix']);
    expect(location(fed, '/_matrix')).toContain('proxy_pass http://127.0.0.1:8008;');
  });

  it('redirects port 80 to https but lets ACME HTTP-01 challenges through', () => {
    const plain = block('80 example.com matrix.example.com');
    expect(location(plain, '/.well-known/acme-challenge/')).toMatch(/root \/var\/www\/html;/);
    expect(location(plain, '/')).toContain('return 301 https://$host$request_uri;');
  });

  it('covers well-known delegation on the base domain, proxied or static (base_url with its trailing slash)', () => {
    const base = block('443 example.com');
    expect(location(base, '/.well-known/matrix/')).toContain('proxy_pass http://127.0.0.1:8008;');
    const docs = [...base.matchAll(/^\s*#\s+return 200 '(.*)';$/gm)].map((m) => JSON.parse(m[1]!) as unknown);
    expect(docs).toEqual([{ 'm.server': 'matrix.example.com:443' }, { 'm.homeserver': { base_url: 'https://matrix.example.com/' } }]);
  });
});

describe('config/systemd/axon.service', () => {
  const unit = read('config/systemd/axon.service');
  const directives = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string) => directives.get(k)?.[0];

  it('runs node with the config file and the conf.d directory as the axon user', () => {
    expect(one('ExecStart')).toMatch(/^\/usr\/bin\/node \S+\/dist\/src\/main\.js -c \/etc\/axon\/homeserver\.yaml -c \/etc\/axon\/conf\.d\/$/);
    expect(one('User')).toBe('axon');
    expect(one('Group')).toBe('axon');
    expect(one('WorkingDirectory')).toBe('/var/lib/axon');
    expect(one('Restart')).toBe('on-failure');
    expect(one('TimeoutStopSec')).toBeDefined();
  });

  it('passes systemd-analyze verify', () => {
    if (!existsSync('/usr/bin/systemd-analyze')) return;
    // Prints nothing for a unit it finds sound; unknown directives and missing programs are reported.
    const run = spawnSync('systemd-analyze', ['verify', join(REPO, 'config/systemd/axon.service')], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(`${run.stdout}${run.stderr}`).toBe('');
  });

  it('uses the paths of the README and the sample config', () => {
    const readme = read('README.md');
    expect(readme).toContain('--data-directory /var/lib/axon');
    expect(readme).toContain('-c /etc/axon/homeserver.yaml');
    const sample = loadConfig([join(REPO, 'config', 'homeserver.yaml')], { env: {}, warn: () => undefined, info: () => undefined });
    for (const p of [sample.pid_file ?? '', sample.media_store_path]) expect(p.startsWith(`${one('ReadWritePaths')}/`)).toBe(true);
    expect(one('LogsDirectory')).toBe('axon');
  });

  it('is hardened', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ReadWritePaths')).toBe('/var/lib/axon');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('ProtectHome')).toBe('yes');
    expect(directives.has('MemoryDenyWriteExecute')).toBe(false); // V8's JIT needs W+X memory
  });
});

describe('Dockerfile', () => {
  const docker = read('Dockerfile');
  it('builds in a separate stage and runs the built server as a non-root user with /data', () => {
    expect(docker.match(/^FROM node:20/gm)).toHaveLength(2);
    expect(docker).toMatch(/RUN npm ci/);
    expect(docker).toMatch(/npm run build/);
    expect(docker).toMatch(/npm prune --omit=dev/);
    expect(docker).toMatch(/^USER node$/m);
    expect(docker).toMatch(/^VOLUME \/data$/m);
    expect(docker).toMatch(/^EXPOSE 8008$/m);
    expect(docker).toContain('ENTRYPOINT ["node", "dist/src/main.js"]');
    expect(docker).toContain('CMD ["-c", "/data/homeserver.yaml"]');
  });
  it('puts the operator commands on PATH as the README install does', () => {
    expect(docker).toMatch(/^RUN npm install --global .*\/app$/m);
    expect(read('README.md')).toMatch(/^\s*npm install --global \/opt\/axon$/m);
  });
});
