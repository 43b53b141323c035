import dns from "node:dns";
import net from "node:net";
import { AppError } from "../errors";

/**
 * Addresses an S3 endpoint may not point at: link-local ranges, where cloud
 * instance metadata services answer (169.254.169.254 hands out the host's
 * credentials on AWS, GCP, Azure and others; fd00:ec2::254 on AWS over IPv6).
 * Test connection and every backup would otherwise make this server fetch
 * from them for whoever fills in the form. Loopback and private ranges stay
 * allowed: self-hosters run MinIO on the same machine or the LAN.
 */
const FORBIDDEN = new net.BlockList();
FORBIDDEN.addSubnet("169.254.0.0", 16, "ipv4");
FORBIDDEN.addSubnet("fe80::", 10, "ipv6");
FORBIDDEN.addAddress("fd00:ec2::254", "ipv6");
// The same IPv4 range spelled as IPv6: NAT64 (64:ff9b::/96) and IPv4-compatible (::/96); IPv4-mapped is matched by BlockList itself.
FORBIDDEN.addSubnet("64:ff9b::a9fe:0", 112, "ipv6");
FORBIDDEN.addSubnet("::a9fe:0", 112, "ipv6");

/** Is this IP address (v4 or v6, without brackets) one an endpoint may not reach? */
export function isForbiddenAddress(ip: string): boolean {
  const family = net.isIP(ip);
  if (!family) return false;
  return FORBIDDEN.check(ip, family === 4 ? "ipv4" : "ipv6");
}

const refusal = (host: string) =>
  new AppError(
    400,
    "OFFSITE_ENDPOINT_FORBIDDEN",
    `${host} is a link-local address (where cloud metadata services answer), not a storage endpoint: Coffer does not connect there. Use your storage's address (a LAN address such as 192.168.1.20 or localhost is fine).`,
    { endpoint: "Use your storage's address, not a link-local (169.254.x.x, fe80::) one." },
  );

/**
 * Why an endpoint URL may not be used, or null. The host is read the way the
 * HTTP client will read it (WHATWG URL), so every spelling of an address
 * (decimal 2852039166, hex 0xa9fea9fe, ::ffff:169.254.169.254) is judged as
 * the address it is. A host name is judged when it resolves (guardedLookup).
 */
export function endpointProblem(endpoint: string): AppError | null {
  let host: string;
  try {
    host = new URL(endpoint).hostname;
  } catch {
    return null; // not a URL: the caller's own format check says so
  }
  const ip = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return isForbiddenAddress(ip) ? refusal(host) : null;
}

/** Throws the 400 of endpointProblem. */
export function assertEndpointAllowed(endpoint: string): void {
  const problem = endpointProblem(endpoint);
  if (problem) throw problem;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http(s).Agent that refuses a host name resolving to a
 * forbidden address, checked at connect time on what the connection will
 * use, so DNS that answers 169.254.169.254 (or changes its answer after the
 * form was saved) does not get around endpointProblem.
 */
export function guardedLookup(resolve: typeof dns.lookup = dns.lookup) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    resolve(hostname, options, ((err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => {
      if (err) return callback(err, address, family);
      const all = Array.isArray(address) ? address.map((a) => a.address) : [address];
      if (all.some(isForbiddenAddress)) return callback(refusal(hostname) as unknown as NodeJS.ErrnoException, address, family);
      callback(null, address, family);
    }) as never);
  };
}
