import net from "node:net";

/**
 * Who is on the other end of a request. By default the TCP peer, nothing a
 * client can write. Behind a reverse proxy the operator lists the proxies
 * (COFFER_TRUSTED_PROXIES, comma-separated addresses or CIDRs); only then is
 * X-Forwarded-For read, right to left, skipping trusted hops, and the first
 * untrusted entry is the client. Entries left of it were written by whoever
 * sent the request and are ignored.
 */
export interface TrustedProxies {
  trusts(address: string): boolean;
  readonly list: readonly string[];
}

export class TrustedProxiesError extends Error {}

/** `::ffff:10.0.0.1` is the IPv4 address 10.0.0.1; a bracketed or zoned IPv6 loses the decoration. */
export function normalizeAddress(raw: string): string | null {
  let a = raw.trim();
  if (a.startsWith("[") && a.includes("]")) a = a.slice(1, a.indexOf("]"));
  a = a.replace(/%.*$/, "");
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a)) a = a.slice(7);
  // An IPv4 address with a port (some proxies send "1.2.3.4:5678").
  if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(a)) a = a.slice(0, a.indexOf(":"));
  return net.isIP(a) ? a.toLowerCase() : null;
}

export function parseTrustedProxies(spec: string | undefined): TrustedProxies {
  const list = (spec ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const block = new net.BlockList();
  for (const entry of list) {
    const [addr, bits] = entry.split("/");
    const ip = normalizeAddress(addr);
    if (!ip) throw new TrustedProxiesError(`COFFER_TRUSTED_PROXIES: "${entry}" is not an IP address or CIDR range.`);
    const family = net.isIPv4(ip) ? "ipv4" : "ipv6";
    const max = family === "ipv4" ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
      throw new TrustedProxiesError(`COFFER_TRUSTED_PROXIES: "${entry}" has a prefix length that is not 0-${max}.`);
    }
    block.addSubnet(ip, prefix, family);
  }
  return {
    list,
    trusts(address) {
      const ip = normalizeAddress(address);
      return !!ip && block.check(ip, net.isIPv4(ip) ? "ipv4" : "ipv6");
    },
  };
}

/** The client's address for a request that arrived from `peer` carrying `forwardedFor` (X-Forwarded-For, possibly several headers joined). */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string | null {
  const direct = peer ? normalizeAddress(peer) : null;
  if (!direct || !trusted.trusts(direct)) return direct;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : (forwardedFor ?? "")).split(",");
  let nearest = direct;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i]);
    if (!hop) return nearest; // garbage from a trusted proxy's client: stop at what we know
    if (!trusted.trusts(hop)) return hop;
    nearest = hop;
  }
  return nearest; // every hop is a trusted proxy: the farthest one is as close to the client as we can tell
}
