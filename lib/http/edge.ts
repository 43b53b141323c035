import { processWide } from "../util/process-wide";

/**
 * What Coffer's HTTP entry (server/main.ts) does to every request before
 * Next sees it, kept framework-free so the rules are tested directly.
 */

/** The header carrying the client address the entry worked out; any copy a client sends is removed first. */
export const CLIENT_HEADER = "x-coffer-client";

/** The header naming this request in CLIENT_GONE, so a route can learn that its client hung up. */
export const REQUEST_HEADER = "x-coffer-request";

/** A request the entry is answering. */
export interface InFlight {
  /**
   * Aborted when the socket closes, even before Next has wrapped the body
   * (then the body stream neither ends nor fails, and an upload would wait
   * forever holding its temp file).
   */
  gone: AbortController;
  /** performance.now() when it arrived: background work gives way to young requests. */
  startedAt: number;
}

/** Requests in flight, keyed by REQUEST_HEADER; the entry adds and removes them. */
export function requestsInFlight(): Map<string, InFlight> {
  return processWide("requests", () => new Map<string, InFlight>());
}

function youngRequestInFlight(youngMs: number): boolean {
  const now = performance.now();
  for (const r of requestsInFlight().values()) if (now - r.startedAt < youngMs) return true;
  return false;
}

/**
 * Background work (a backup's blocks and its read-back) calls this between
 * steps: it waits while a request that started less than `youngMs` ago is
 * being answered, for at most `maxMs`. A backup then takes what requests
 * leave of a small server, of the CPU and of the disk: an upload's fsync
 * does not queue behind a block of the backup's writeback. Long requests (a
 * download, Back up now itself) are older than `youngMs` and do not hold it;
 * the CLI records no requests and never waits.
 */
export async function giveWayToRequests(youngMs = 1000, maxMs = 100): Promise<void> {
  const until = performance.now() + maxMs;
  while (youngRequestInFlight(youngMs) && performance.now() < until) await new Promise((r) => setTimeout(r, 2));
}

/** Set by the entry, so the app trusts CLIENT_HEADER only when the entry stamped it. */
export const EDGE_MARK = Symbol.for("coffer.edge");

/**
 * Pages run Next's inline bootstrap scripts and styles, hence 'unsafe-inline'
 * for those; nothing else may load from anywhere but Coffer itself, and no
 * other site may frame a page (clickjacking of Remove or Reset password).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'unsafe-inline'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
  "Cross-Origin-Opener-Policy": "same-origin",
};

/** Bodies of next-auth's routes (sign-in, sign-out, csrf) are a few form fields. */
export const AUTH_BODY_CAP = 8 * 1024;

export type EdgeVerdict = { ok: true } | { ok: false; status: number; code: string; message: string };

/**
 * Whether a request may reach the app. next-auth reads its body whole
 * before Coffer's code runs, so its routes are capped here, by declared
 * length: Node's parser never delivers more than Content-Length, and a
 * chunked body (which declares none) is refused with 411. Every other route
 * reads its body through a cap of its own (readJson, uploads, restores).
 */
export function admitRequest(method: string, rawUrl: string, headers: Record<string, string | string[] | undefined>): EdgeVerdict {
  const pathname = rawUrl.split("?")[0];
  try {
    decodeURIComponent(pathname);
  } catch {
    return { ok: false, status: 400, code: "BAD_URL", message: "The address has a malformed %-escape." };
  }
  if (pathname.startsWith("/api/auth/") && method !== "GET" && method !== "HEAD") {
    const declared = headers["content-length"];
    if (declared === undefined) {
      if (headers["transfer-encoding"]) return { ok: false, status: 411, code: "LENGTH_REQUIRED", message: "Sign-in requests must say their length (Content-Length)." };
    } else if (!/^\d+$/.test(String(declared)) || Number(declared) > AUTH_BODY_CAP) {
      return { ok: false, status: 413, code: "TOO_LARGE", message: "The request body is too large." };
    }
  }
  return { ok: true };
}
