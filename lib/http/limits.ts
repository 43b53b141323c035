/**
 * How long and how many: the limits Coffer's HTTP entry (server/main.ts)
 * puts on sockets, so that no slow or hoarding client holds the server.
 * Each can be set by environment (the tests use short ones); the defaults
 * are in README.md's Security section.
 */
export interface ServerLimits {
  /** A connection must have sent a request's headers within this long (also closes a socket that sends nothing). */
  headersTimeoutMs: number;
  /** A request body that delivers no byte for this long is dropped; progress resets it, so a slow upload lands. */
  bodyIdleMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** How often Node checks headersTimeout. */
  checkIntervalMs: number;
  /** Open connections from one client address. */
  perAddress: number;
  /** Open connections in all. */
  total: number;
}

export class ServerLimitsError extends Error {}

const SETTINGS: { key: keyof ServerLimits; env: string; fallback: number }[] = [
  { key: "headersTimeoutMs", env: "COFFER_HEADERS_TIMEOUT_MS", fallback: 30_000 },
  { key: "bodyIdleMs", env: "COFFER_BODY_IDLE_TIMEOUT_MS", fallback: 30_000 },
  { key: "keepAliveTimeoutMs", env: "COFFER_KEEPALIVE_TIMEOUT_MS", fallback: 5_000 },
  // Browsers open at most six connections to a host; 64 leaves room for a household or office behind one NAT address.
  { key: "perAddress", env: "COFFER_MAX_CONNECTIONS_PER_ADDRESS", fallback: 64 },
  // Well under the file descriptors a service gets, leaving room for SQLite, blobs and backups.
  { key: "total", env: "COFFER_MAX_CONNECTIONS", fallback: 1024 },
];

export function serverLimits(env: Record<string, string | undefined>): ServerLimits {
  const limits = {} as ServerLimits;
  for (const { key, env: name, fallback } of SETTINGS) {
    const raw = env[name];
    if (raw === undefined || raw === "") {
      limits[key] = fallback;
      continue;
    }
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new ServerLimitsError(`${name} must be a whole number above 0, not "${raw}".`);
    limits[key] = Number(raw);
  }
  // Node checks headersTimeout on an interval; a tenth of it (at most Node's own 30 s) keeps the overshoot small.
  limits.checkIntervalMs = Math.max(100, Math.min(30_000, Math.floor(limits.headersTimeoutMs / 10)));
  return limits;
}

/**
 * Counts open connections in all and per client address, and says why a new
 * one is refused. A connection's address is its TCP peer: the client address
 * of its requests is not known when it connects, and a trusted proxy carries
 * many clients over each of its connections, so there is no honest
 * per-client key for a proxy's connections. They count towards the total
 * only; a per-client connection limit belongs in the proxy (nginx
 * limit_conn, Caddy's), which sees the clients' own sockets.
 */
export class ConnectionGate {
  private open = 0;
  private readonly byAddress = new Map<string, number>();
  constructor(private readonly limits: Pick<ServerLimits, "perAddress" | "total">) {}

  /** Counts the connection in and returns null, or returns the sentence it is refused with (and counts nothing). */
  admit(address: string, fromTrustedProxy: boolean): string | null {
    if (this.open >= this.limits.total) return "The server has too many open connections. Try again in a moment.";
    const mine = this.byAddress.get(address) ?? 0;
    if (!fromTrustedProxy && mine >= this.limits.perAddress) {
      return `Too many open connections from your address (at most ${this.limits.perAddress}). Close some and try again.`;
    }
    this.open++;
    if (!fromTrustedProxy) this.byAddress.set(address, mine + 1);
    return null;
  }

  release(address: string, fromTrustedProxy: boolean): void {
    this.open--;
    if (fromTrustedProxy) return;
    const left = (this.byAddress.get(address) ?? 1) - 1;
    if (left > 0) this.byAddress.set(address, left);
    else this.byAddress.delete(address);
  }

  get openConnections(): number {
    return this.open;
  }
}
