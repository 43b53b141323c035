import crypto from "node:crypto";
import type { DB } from "../db/connection";

/**
 * Sessions are signed tokens (JWT) that live in the browser, so signing out
 * must be remembered on the server: each session has an id, and a signed-out
 * id is kept here until the token would have expired by itself.
 */
export function newSessionId(): string {
  return crypto.randomBytes(16).toString("hex");
}

export function endSession(db: DB, sid: unknown, expiresAt: unknown, now = Date.now()): void {
  if (typeof sid !== "string" || !/^[0-9a-f]{32}$/.test(sid)) return;
  const exp = typeof expiresAt === "number" && Number.isFinite(expiresAt) ? Math.floor(expiresAt) : Math.floor(now / 1000) + 31 * 24 * 3600;
  db.transaction(() => {
    db.prepare("DELETE FROM ended_sessions WHERE expires_at < ?").run(Math.floor(now / 1000));
    db.prepare("INSERT OR REPLACE INTO ended_sessions (sid, expires_at) VALUES (?, ?)").run(sid, exp);
  })();
}

export function sessionEnded(db: DB, sid: unknown): boolean {
  if (typeof sid !== "string") return true; // a token from before session ids: sign in again
  return !!db.prepare("SELECT 1 FROM ended_sessions WHERE sid = ?").get(sid);
}
