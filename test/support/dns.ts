import dns2 from 'dns2';
import type { AddressInfo } from 'node:net';

const { Packet } = dns2;

/**
 * A small authoritative DNS server on 127.0.0.1 for the deliverability tests: it answers from
 * the zone the test writes, over UDP and, on the same port, TCP (node's resolver asks again over
 * TCP when a UDP answer was truncated, as a 2048-bit DKIM key's is). A name that is not in the
 * zone (and has no name under it) is NXDOMAIN; a name without the type asked for is NODATA.
 */
export interface ZoneEntry {
  A?: string[];
  AAAA?: string[];
  MX?: [priority: number, exchange: string][];
  /** a record given as a list is published as that many strings (each at most 255 bytes) */
  TXT?: (string | string[])[];
  PTR?: string[];
}
export type Zone = Record<string, ZoneEntry>;

export interface TestDns {
  port: number;
  /** for the dnsServers setting */
  server: string;
  /** every question asked, as "TYPE name" */
  queries: string[];
  close(): Promise<void>;
}

/** A TXT value longer than a DNS string holds, cut into 255-byte strings (RFC 7208 §3.3). */
export function txtStrings(value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < value.length; i += 255) out.push(value.slice(i, i + 255));
  return out;
}

export async function startDns(zone: Zone): Promise<TestDns> {
  const entries = new Map(Object.entries(zone).map(([name, entry]) => [name.toLowerCase().replace(/\.$/, ''), entry]));
  const queries: string[] = [];
  const exists = (name: string) => entries.has(name) || [...entries.keys()].some((k) => k.endsWith(`.${name}`));

  const handle = (request: InstanceType<typeof Packet>, send: (response: InstanceType<typeof Packet>) => Promise<Buffer>) => {
    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    const [question] = request.questions;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const typeName = Packet.typeName(question.type);
    queries.push(`${typeName} ${name}`);
    const entry = entries.get(name);
    if (!entry && !exists(name)) response.header.rcode = Packet.RCODE.NXDOMAIN;
    const base = { name: question.name, class: Packet.CLASS.IN, ttl: 60 };
    const add = (record: object) => response.answers.push({ ...base, ...record } as never);
    if (entry) {
      switch (question.type) {
        case Packet.TYPE.A: entry.A?.forEach((address) => add({ type: Packet.TYPE.A, address })); break;
        case Packet.TYPE.AAAA: entry.AAAA?.forEach((address) => add({ type: Packet.TYPE.AAAA, address })); break;
        case Packet.TYPE.MX: entry.MX?.forEach(([priority, exchange]) => add({ type: Packet.TYPE.MX, priority, exchange })); break;
        case Packet.TYPE.TXT: entry.TXT?.forEach((data) => add({ type: Packet.TYPE.TXT, data: Array.isArray(data) ? data : txtStrings(data) })); break;
        case Packet.TYPE.PTR: entry.PTR?.forEach((domain) => add({ type: Packet.TYPE.PTR, domain })); break;
      }
    }
    void send(response);
  };

  // UDP on a free port first, then TCP on the same one; another process may hold that TCP port.
  for (let attempt = 0; ; attempt++) {
    const udp = dns2.createUDPServer(handle as never);
    await udp.listen(0, '127.0.0.1');
    const port = (udp.address() as AddressInfo).port;
    const tcp = dns2.createTCPServer(handle as never);
    const listening = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.once('listening', () => resolve(true));
      tcp.listen(port, '127.0.0.1');
    });
    if (!listening) {
      udp.close();
      if (attempt < 10) continue;
      throw new Error('no port free for UDP and TCP both');
    }
    return {
      port,
      server: `127.0.0.1:${port}`,
      queries,
      close: () => new Promise<void>((resolve) => {
        tcp.close(() => udp.close(() => resolve()));
      }),
    };
  }
}
