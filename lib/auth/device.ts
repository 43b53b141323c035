import crypto from "node:crypto";

/**
 * Device cookies (OWASP's answer to lockouts that strangers can trigger): a
 * browser that once signed in as a user carries a signed token naming that
 * user. During a lockout of the username, strangers wait; a browser with a
 * valid token for it is held only to a limit of its own.
 */
export const DEVICE_COOKIE = "coffer_device";
export const DEVICE_MAX_AGE_S = 365 * 24 * 3600;

const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64url");

function mac(secret: Buffer, body: string): string {
  return crypto.createHmac("sha256", secret).update(`coffer-device:${body}`).digest("base64url");
}

export function issueDeviceToken(secret: Buffer, username: string, now = Date.now()): string {
  const body = b64(JSON.stringify({ u: username.toLowerCase(), n: crypto.randomBytes(12).toString("hex"), t: Math.floor(now / 1000) }));
  return `${body}.${mac(secret, body)}`;
}

/** The device's id if `token` is a valid, unexpired device token for `username`; otherwise null. */
export function verifyDeviceToken(secret: Buffer, token: string | null | undefined, username: string, now = Date.now()): string | null {
  if (!token || token.length > 512) return null;
  const [body, sig] = token.split(".");
  if (!body || !sig) return null;
  const expected = Buffer.from(mac(secret, body));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null;
  try {
    const claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as { u?: unknown; n?: unknown; t?: unknown };
    if (claims.u !== username.toLowerCase() || typeof claims.n !== "string" || typeof claims.t !== "number") return null;
    if (now / 1000 - claims.t > DEVICE_MAX_AGE_S) return null;
    return claims.n;
  } catch {
    return null;
  }
}

/** One cookie's value from a Cookie header. */
export function cookieValue(header: string | null | undefined, name: string): string | null {
  for (const part of (header ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}
