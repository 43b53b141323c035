import { z } from "zod";
import type { Instance } from "../instance";
import { AppError, notFound } from "../errors";
import { userActor, audit, type Actor } from "../audit/log";
import { hashPassword, verifyPassword, dummyPasswordHash, MIN_PASSWORD_LENGTH } from "./password";
import { retryAfter, recordAttempt, clearAttempts, minutesText, backoffWait, recordFailure, waitText, type Limit, type Backoff } from "./ratelimit";
import { verifyDeviceToken } from "./device";

export type Role = "admin" | "member";

export interface User {
  id: number;
  username: string;
  role: Role;
  session_version: number;
  used_bytes: number;
  created_at: string;
}

interface UserRow extends User {
  password_hash: string;
}

export const usernameSchema = z
  .string()
  .trim()
  .min(2, "Use at least 2 characters.")
  .max(64, "Use at most 64 characters.")
  .regex(/^[A-Za-z0-9._@-]+$/, "Use letters, digits and . _ @ - only.");

export const passwordSchema = z
  .string()
  .min(MIN_PASSWORD_LENGTH, `Use at least ${MIN_PASSWORD_LENGTH} characters.`)
  .max(1024, "Use at most 1024 characters.");

const USER_COLUMNS = "id, username, role, session_version, used_bytes, created_at";

export function getUser(inst: Instance, id: number): User | null {
  return (inst.db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`).get(id) as User | undefined) ?? null;
}

export function listUsers(inst: Instance): (User & { documents: number })[] {
  return inst.db
    .prepare(
      `SELECT ${USER_COLUMNS.split(", ").map((c) => "u." + c).join(", ")},
              (SELECT count(*) FROM documents d WHERE d.owner_id = u.id AND d.deleted_at IS NULL) AS documents
       FROM users u ORDER BY u.role, u.username COLLATE NOCASE`,
    )
    .all() as (User & { documents: number })[];
}

export async function createUser(
  inst: Instance,
  actor: Actor,
  input: { username: string; password: string; role: Role },
): Promise<User> {
  const username = usernameSchema.parse(input.username);
  passwordSchema.parse(input.password);
  const hash = await hashPassword(input.password);
  const exists = inst.db.prepare("SELECT 1 FROM users WHERE username = ?").get(username);
  if (exists) throw new AppError(409, "USERNAME_TAKEN", "That username is taken.", { username: "That username is taken." });
  const info = inst.db
    .prepare("INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)")
    .run(username, hash, input.role, new Date().toISOString());
  const user = getUser(inst, Number(info.lastInsertRowid))!;
  audit(inst.db, actor, "user.create", username, { role: input.role });
  return user;
}

/** Sets a new password and ends that user's sessions everywhere. */
export async function resetPassword(inst: Instance, actor: Actor, userId: number, password: string): Promise<void> {
  passwordSchema.parse(password);
  const user = getUser(inst, userId);
  if (!user) throw notFound("That user");
  const hash = await hashPassword(password);
  inst.db
    .prepare("UPDATE users SET password_hash = ?, session_version = session_version + 1 WHERE id = ?")
    .run(hash, userId);
  audit(inst.db, actor, "user.password_reset", user.username);
}

/**
 * Removes a member. Their documents are handed to the admin who removes
 * them rather than deleted: removing a person must not lose data.
 */
export function removeUser(inst: Instance, actor: Actor & { id: number }, userId: number): { movedDocuments: number } {
  const user = getUser(inst, userId);
  if (!user) throw notFound("That user");
  if (user.id === actor.id) throw new AppError(409, "CANNOT_REMOVE_SELF", "You cannot remove your own account.");
  if (user.role === "admin") throw new AppError(409, "CANNOT_REMOVE_ADMIN", "Admins cannot be removed here.");
  return inst.db.transaction(() => {
    const moved = inst.db.prepare("UPDATE documents SET owner_id = ? WHERE owner_id = ?").run(actor.id, userId).changes;
    inst.db.prepare("UPDATE users SET used_bytes = used_bytes + ? WHERE id = ?").run(user.used_bytes, actor.id);
    inst.db.prepare("DELETE FROM users WHERE id = ?").run(userId);
    audit(inst.db, actor, "user.remove", user.username, { moved_documents: moved });
    return { movedDocuments: moved };
  })();
}

export const LOGIN_LIMIT: Limit = { max: 5, windowMs: 15 * 60 * 1000 };
export const LOGIN_IP_LIMIT: Limit = { max: 30, windowMs: 15 * 60 * 1000 };
/**
 * Unknown clients guessing one username, from any number of addresses, are
 * slowed down (10 free tries, then 1 s doubling to 15 min), never locked
 * out for good: and a browser that signed in as that user before (a device
 * cookie) is not slowed by strangers at all, only by its own failures.
 */
export const LOGIN_USER_BACKOFF: Backoff = { free: 10, baseMs: 1000, maxMs: 15 * 60 * 1000, forgetMs: 60 * 60 * 1000 };
export const LOGIN_DEVICE_LIMIT: Limit = { max: 10, windowMs: 15 * 60 * 1000 };

export type LoginResult = { ok: true; user: User } | { ok: false; code: "INVALID" | "RATE_LIMITED"; message: string };

/**
 * Checks a sign-in. From an unknown client, failures count against the
 * username+address pair, the address, and (as a growing delay) the
 * username; from a browser with a device token for this username, only
 * against that device. Every failure is audited.
 */
export async function verifyLogin(inst: Instance, username: string, password: string, ip: string | null, deviceToken?: string | null): Promise<LoginResult> {
  const name = username.trim().slice(0, 64);
  const lower = name.toLowerCase();
  const device = verifyDeviceToken(inst.secretKey, deviceToken, lower);
  const pairKey = `login:${lower}|${ip ?? "?"}`;
  const ipKey = `login-ip:${ip ?? "?"}`;
  const userKey = `login-user:${lower}`;
  const deviceKey = `login-device:${device}`;
  const wait = device
    ? retryAfter(deviceKey, LOGIN_DEVICE_LIMIT)
    : Math.max(retryAfter(pairKey, LOGIN_LIMIT), retryAfter(ipKey, LOGIN_IP_LIMIT), backoffWait(userKey, LOGIN_USER_BACKOFF));
  if (wait > 0) {
    return { ok: false, code: "RATE_LIMITED", message: `Too many failed sign-ins. Try again in ${waitText(wait)}.` };
  }
  const row = inst.db.prepare("SELECT * FROM users WHERE username = ?").get(name) as UserRow | undefined;
  const ok = await verifyPassword(password, row?.password_hash ?? (await dummyPasswordHash()));
  if (!row || !ok) {
    if (device) recordAttempt(deviceKey, LOGIN_DEVICE_LIMIT);
    else {
      recordAttempt(pairKey, LOGIN_LIMIT);
      recordAttempt(ipKey, LOGIN_IP_LIMIT);
      recordFailure(userKey, LOGIN_USER_BACKOFF);
    }
    audit(inst.db, { id: row?.id ?? null, name: name || null, ip }, "auth.login_failed", name || null, { device: device ? "known" : "unknown" });
    return { ok: false, code: "INVALID", message: "Wrong username or password." };
  }
  if (device) clearAttempts(deviceKey);
  else clearAttempts(pairKey);
  audit(inst.db, userActor(row, ip), "auth.login", row.username);
  const { password_hash: _omit, ...user } = row;
  return { ok: true, user };
}

export const CONFIRM_LIMIT: Limit = { max: 5, windowMs: 15 * 60 * 1000 };

/** Re-entering one's password before something drastic (a restore). Rate-limited and audited. */
export async function confirmPassword(inst: Instance, user: User, password: string, ip: string | null): Promise<void> {
  const key = `confirm:${user.id}`;
  const wait = retryAfter(key, CONFIRM_LIMIT);
  if (wait > 0) throw new AppError(429, "RATE_LIMITED", `Too many wrong passwords. Try again in ${minutesText(wait)}.`);
  const row = inst.db.prepare("SELECT password_hash FROM users WHERE id = ?").get(user.id) as { password_hash: string } | undefined;
  if (!row || !(await verifyPassword(password, row.password_hash))) {
    recordAttempt(key, CONFIRM_LIMIT);
    audit(inst.db, userActor(user, ip), "auth.confirm_failed", user.username);
    throw new AppError(401, "BAD_PASSWORD", "That password is not right.", { password: "That password is not right." });
  }
  clearAttempts(key);
}
