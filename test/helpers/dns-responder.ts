/**
 * A tiny DNS server for tests, over UDP on 127.0.0.1: answers A, AAAA and
 * SRV questions from a table, NXDOMAIN for names it does not hold (and an
 * empty answer for a known name without records of the type asked).
 * Point a node:dns/promises Resolver at it with
 * `resolver.setServers([`127.0.0.1:${responder.port}`])`.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface SrvAnswer {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface DnsTable {
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
  srv?: Record<string, SrvAnswer[]>;
}

export interface DnsResponder {
  port: number;
  table: DnsTable;
  /** Every question asked, as `TYPE name`. */
  asked: string[];
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_SRV = 33;

function encodeName(name: string): Buffer {
  const parts = name
    .replace(/\.$/, '')
    .split('.')
    .filter((p) => p !== '');
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'ascii')])), Buffer.from([0])]);
}

function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  while (msg[i] !== 0) {
    const len = msg[i]!;
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'));
    i += len + 1;
  }
  return { name: labels.join('.').toLowerCase(), end: i + 1 };
}

function rr(type: number, rdata: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // pointer to the question's name
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(60, 6);
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

function answerFor(table: DnsTable, type: number, name: string): Buffer[] | undefined {
  const known = (m?: Record<string, unknown>) => m !== undefined && Object.prototype.hasOwnProperty.call(m, name);
  if (!known(table.a) && !known(table.aaaa) && !known(table.srv)) return undefined;
  if (type === TYPE_A) {
    return (table.a?.[name] ?? []).map((ip) => rr(TYPE_A, Buffer.from(ip.split('.').map(Number))));
  }
  if (type === TYPE_AAAA) {
    return (table.aaaa?.[name] ?? []).map((ip) => {
      const halves = ip.split('::');
      const g = (s: string | undefined) => (s ? s.split(':') : []);
      const head = g(halves[0]);
      const tail = g(halves[1]);
      const all = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
      const b = Buffer.alloc(16);
      all.forEach((x, i) => b.writeUInt16BE(parseInt(x, 16), i * 2));
      return rr(TYPE_AAAA, b);
    });
  }
  if (type === TYPE_SRV) {
    return (table.srv?.[name] ?? []).map((s) => {
      const fixed = Buffer.alloc(6);
      fixed.writeUInt16BE(s.priority, 0);
      fixed.writeUInt16BE(s.weight, 2);
      fixed.writeUInt16BE(s.port, 4);
      return rr(TYPE_SRV, Buffer.concat([fixed, encodeName(s.target)]));
    });
  }
  return [];
}

export async function startDnsResponder(table: DnsTable): Promise<DnsResponder> {
  const socket: Socket = createSocket('udp4');
  const asked: string[] = [];
  const responder: DnsResponder = { port: 0, table, asked, close: () => new Promise((resolve) => socket.close(() => resolve())) };
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    const { name, end } = readName(msg, 12);
    const type = msg.readUInt16BE(end);
    asked.push(`${type === TYPE_A ? 'A' : type === TYPE_AAAA ? 'AAAA' : type === TYPE_SRV ? 'SRV' : String(type)} ${name}`);
    const answers = answerFor(responder.table, type, name);
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    const rd = msg[2]! & 0x01;
    header[2] = 0x84 | rd; // QR, AA, RD as asked
    header[3] = answers === undefined ? 0x03 : 0x00; // NXDOMAIN or NOERROR
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers?.length ?? 0, 6);
    const question = msg.subarray(12, end + 4);
    socket.send(Buffer.concat([header, question, ...(answers ?? [])]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  responder.port = socket.address().port;
  return responder;
}
