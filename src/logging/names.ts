/**
 * Axon's named loggers and the Synapse logger names that stand for them in
 * a log config, so `synapse.storage.SQL: DEBUG` or
 * `synapse.access.http.8008: WARNING` mean in Axon what they mean in
 * Synapse. A configured name applies to a logger when it is one of the
 * logger's names or an ancestor of one (Python's dotted hierarchy); the
 * deepest such name wins, an `axon.*` one before a `synapse.*` one of the
 * same depth. docs/ADMIN.md has the table.
 */

/** Each Axon logger and its Synapse names. A name not listed maps through its nearest listed ancestor. */
export const SYNAPSE_NAMES: Readonly<Record<string, readonly string[]>> = {
  axon: ['synapse'],
  'axon.app': ['synapse.app', 'synapse.config'],
  'axon.http': ['synapse.http'],
  'axon.access': ['synapse.access'],
  'axon.storage': ['synapse.storage'],
  'axon.storage.sql': ['synapse.storage.SQL'],
  'axon.storage.migrations': ['synapse.storage.prepare_database'],
  'axon.auth': ['synapse.api.auth', 'synapse.handlers.auth', 'synapse.handlers.register'],
  'axon.rooms': ['synapse.handlers.room', 'synapse.handlers.message', 'synapse.handlers.room_member', 'synapse.handlers.directory', 'synapse.events', 'synapse.state'],
  'axon.sync': ['synapse.handlers.sync'],
  'axon.typing': ['synapse.handlers.typing'],
  'axon.presence': ['synapse.handlers.presence'],
  'axon.push': ['synapse.push'],
  'axon.media': ['synapse.media', 'synapse.rest.media'],
  'axon.e2ee': ['synapse.handlers.e2e_keys', 'synapse.handlers.e2e_room_keys', 'synapse.handlers.device', 'synapse.handlers.devicemessage'],
  'axon.federation': ['synapse.federation'],
  'axon.federation.keyring': ['synapse.crypto.keyring'],
};

/** The access log of a listener, as Synapse names it: `synapse.access.http.8008` (`https` for TLS). */
export function accessLoggerName(port: number | string, tls: boolean): string {
  return `axon.access.${tls ? 'https' : 'http'}.${port}`;
}

/** A logger's own name first, then its Synapse names. */
export function namesOf(name: string): string[] {
  const out = [name];
  for (let base = name; ;) {
    const synapse = SYNAPSE_NAMES[base];
    if (synapse) {
      for (const s of synapse) out.push(s + name.slice(base.length));
      return out;
    }
    const dot = base.lastIndexOf('.');
    if (dot < 0) return out;
    base = base.slice(0, dot);
  }
}

function depth(name: string): number {
  let d = 1;
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) d++;
  return d;
}

/**
 * The configured names that apply to a logger, deepest first: each of its
 * names and their ancestors that `has` knows.
 */
export function configuredAncestors(name: string, has: (n: string) => boolean): string[] {
  const hits: { n: string; d: number; i: number }[] = [];
  for (const full of namesOf(name)) {
    for (let n = full; ;) {
      if (has(n) && !hits.some((h) => h.n === n)) hits.push({ n, d: depth(n), i: hits.length });
      const dot = n.lastIndexOf('.');
      if (dot < 0) break;
      n = n.slice(0, dot);
    }
  }
  hits.sort((a, b) => b.d - a.d || a.i - b.i);
  return hits.map((h) => h.n);
}

/** Python's effective level: that of the deepest configured name with a level, else the root's. */
export function effectiveLevel(name: string, levels: ReadonlyMap<string, string>, rootLevel: string): string {
  const [first] = configuredAncestors(name, (n) => levels.has(n));
  return first === undefined ? rootLevel : (levels.get(first) as string);
}
