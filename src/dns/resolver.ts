import { Resolver } from 'node:dns/promises';
import { DnsUnreachable, type DnsLookup } from '../domain/ports.js';

/**
 * DNS through node's resolver (c-ares), on the servers of the `dnsServers` setting when given
 * (tests, split DNS), else the system's. Answers that say "no such name" or "no such record" are
 * findings; a resolver that refuses, fails or does not answer in time is DnsUnreachable.
 */
export interface ResolverOptions {
  servers?: string[];
  /** per try, in ms */
  timeoutMs?: number;
  tries?: number;
}

const NOT_THERE: ReadonlySet<string> = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME']);

export function dnsResolver(opts: ResolverOptions = {}): DnsLookup {
  const resolver = new Resolver({ timeout: opts.timeoutMs ?? 3000, tries: opts.tries ?? 2 });
  if (opts.servers?.length) resolver.setServers(opts.servers);
  const servers = opts.servers ?? [];
  // One check asks for the same name more than once (an include shared by two records).
  const asked = new Map<string, Promise<unknown>>();

  const ask = <T>(type: string, name: string, query: () => Promise<T[]>): Promise<T[] | null> => {
    const key = `${type} ${name.toLowerCase()}`;
    let answer = asked.get(key) as Promise<T[] | null> | undefined;
    if (!answer) {
      answer = query().catch((err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'EUNKNOWN';
        // NXDOMAIN: the name does not exist; NODATA: it has no record of the type.
        if (code === 'ENOTFOUND') return null;
        if (NOT_THERE.has(code)) return [];
        throw new DnsUnreachable(key, code, servers);
      });
      asked.set(key, answer);
    }
    return answer;
  };

  return {
    txt: (name) => ask('TXT', name, async () => (await resolver.resolveTxt(name)).map((strings) => strings.join(''))),
    mx: (name) => ask('MX', name, () => resolver.resolveMx(name)),
    addresses: async (name) => {
      const [v4, v6] = await Promise.all([ask('A', name, () => resolver.resolve4(name)), ask('AAAA', name, () => resolver.resolve6(name))]);
      return v4 === null && v6 === null ? null : [...(v4 ?? []), ...(v6 ?? [])];
    },
    reverse: (address) => ask('PTR', address, () => resolver.reverse(address)),
  };
}
