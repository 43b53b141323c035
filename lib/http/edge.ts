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

/**
 * Every other body that no route caps while streaming it: the largest JSON
 * any route takes is 128 KiB (readJson), and Next's own limit for a server
 * action's body is 1 MB.
 */
export const DEFAULT_BODY_CAP = 1024 * 1024;

/**
 * Routes that stream their body through a larger cap of their own
 * (documents.max_upload_bytes, COFFER_RESTORE_MAX_BYTES): the entry leaves
 * their bodies alone. Method, then the normalised path, exactly.
 */
const OWN_CAP_ROUTES: ReadonlySet<string> = new Set(["POST /api/documents", "POST /api/settings/backup/restore", "POST /api/setup/restore"]);

export type EdgeVerdict = { ok: true } | { ok: false; status: number; code: string; message: string };
type Refusal = Extract<EdgeVerdict, { ok: false }>;

const badUrl = (message: string): Refusal => ({ ok: false, status: 400, code: "BAD_URL", message });

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * The path Next will route, worked out once so that body caps are matched on
 * it and Next is handed the same spelling (server/main.ts rewrites req.url):
 * %-escapes of unreserved characters (RFC 3986: letters, digits, - . _ ~)
 * are decoded, the others kept with upper-case hex; "\" is "/" (as the URL
 * parser reads it); runs of "/" collapse; "." and ".." segments are resolved
 * and never climb above the root. A spelling that cannot be normalised
 * without changing what it means is refused: a malformed escape, an
 * escaped "/" or "\" (a segment separator Next would see but a router
 * would not), an escaped NUL or control character.
 */
export function normalizePath(rawPath: string): { ok: true; path: string } | Refusal {
  let p = rawPath;
  // Absolute form ("GET http://host/path"): the path is what is routed.
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(p);
  if (absolute) p = p.slice(absolute[0].length) || "/";
  if (!p.startsWith("/") && !p.startsWith("\\")) return badUrl("The address must be a path that starts with /.");
  let decoded = "";
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c !== "%") {
      decoded += c === "\\" ? "/" : c;
      continue;
    }
    const hex = p.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) return badUrl("The address has a malformed %-escape.");
    const code = parseInt(hex, 16);
    const ch = String.fromCharCode(code);
    if (ch === "/" || ch === "\\") return badUrl("The address has an escaped slash (%2F or %5C) in a path; send the path without it.");
    if (code < 0x20 || code === 0x7f) return badUrl("The address has an escaped control character (such as %00) in its path.");
    decoded += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  // What is still escaped must be valid UTF-8, or no router can read it.
  try {
    decodeURIComponent(decoded);
  } catch {
    return badUrl("The address has a malformed %-escape.");
  }
  const out: string[] = [];
  const segments = decoded.split("/").slice(1);
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === "..") out.pop();
    if (seg === "." || seg === "..") {
      if (last) out.push(""); // "/a/b/.." is "/a/", as the URL parser has it
    } else if (seg !== "" || last) out.push(seg);
  });
  return { ok: true, path: "/" + out.join("/") };
}

/** Where the query starts, if anywhere (a fragment is never sent, but a client may). */
function splitTarget(rawUrl: string): { path: string; rest: string } {
  const q = rawUrl.search(/[?#]/);
  return q < 0 ? { path: rawUrl, rest: "" } : { path: rawUrl.slice(0, q), rest: rawUrl.slice(q) };
}

/**
 * The most body bytes a request may send before Next sees it, by its
 * normalised path: next-auth's routes (any case: the cap must not depend on
 * how a router treats case) AUTH_BODY_CAP, routes that cap their own
 * streams none (null), everything else DEFAULT_BODY_CAP.
 */
export function bodyCap(method: string, path: string): number | null {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  const lower = trimmed.toLowerCase();
  if (lower === "/api/auth" || lower.startsWith("/api/auth/")) return AUTH_BODY_CAP;
  if (OWN_CAP_ROUTES.has(`${method.toUpperCase()} ${trimmed}`)) return null;
  return DEFAULT_BODY_CAP;
}

export type Admission = { ok: true; url: string; cap: number | null } | Refusal;

/**
 * Whether a request may reach the app, and if so the URL Next is to route
 * (normalised, the query as sent) and the body cap the entry enforces while
 * the body streams. A declared length over the cap is refused here, before
 * a byte of the body is read: Node's parser never delivers more than
 * Content-Length. A chunked body declares none; next-auth reads its body
 * whole before Coffer's code runs, so chunked sign-in bodies are refused
 * with 411, and elsewhere the entry counts the bytes as they arrive.
 */
export function admitRequest(method: string, rawUrl: string, headers: Record<string, string | string[] | undefined>): Admission {
  const { path: rawPath, rest } = splitTarget(rawUrl);
  const normal = normalizePath(rawPath);
  if (!normal.ok) return normal;
  const cap = bodyCap(method, normal.path);
  const declared = headers["content-length"];
  if (declared !== undefined && !/^\d+$/.test(String(declared))) return { ok: false, status: 400, code: "BAD_LENGTH", message: "Content-Length must be a number of bytes." };
  if (cap !== null) {
    if (declared === undefined) {
      if (headers["transfer-encoding"] && cap === AUTH_BODY_CAP) return { ok: false, status: 411, code: "LENGTH_REQUIRED", message: "Sign-in requests must say their length (Content-Length)." };
    } else if (Number(declared) > cap) {
      return { ok: false, status: 413, code: "TOO_LARGE", message: tooLargeMessage(cap) };
    }
  }
  return { ok: true, url: normal.path + rest, cap };
}

export function tooLargeMessage(cap: number): string {
  return `The request body is too large: this address takes at most ${cap >= 1024 * 1024 ? `${cap / (1024 * 1024)} MiB` : `${cap / 1024} KiB`}.`;
}
