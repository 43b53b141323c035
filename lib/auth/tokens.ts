import crypto from "node:crypto";
import { z } from "zod";
import type { Instance } from "../instance";
import type { DB } from "../db/connection";
import { AppError } from "../errors";
import { systemActor, audit, type Actor } from "../audit/log";
import { retryAfter, recordAttempt, minutesText, type Limit } from "./ratelimit";
import { processWide } from "../util/process-wide";

/**
 * API tokens for automation (a backup pulled by another machine, a metrics
 * scraper). A token is shown once; Coffer keeps only its SHA-256. Scopes
 * name the few routes that take one; restore, users and settings never do.
 */
export const TOKEN_SCOPES = {
  "backup:read": "List stored backups and download them",
  "backup:run": "Run the backup job (Back up now)",
  "metrics:read": "Read Prometheus metrics (/api/metrics)",
} as const;
export type TokenScope = keyof typeof TOKEN_SCOPES;
export const tokenScopeSchema = z.enum(Object.keys(TOKEN_SCOPES) as [TokenScope, ...TokenScope[]]);

export const TOKEN_PREFIX = "coffer_pat_";
const TOKEN_RE = /^coffer_pat_[A-Za-z0-9_-]{43}$/;
/** Unknown tokens from one address, like wrong passwords: a few, then a wait (for guesses only). */
export const TOKEN_LIMIT: Limit = { max: 10, windowMs: 15 * 60 * 1000 };
/** Reads that monitors repeat every few seconds are audited at most this often per token; everything else, every time. */
const QUIET_AUDIT_MS = 3600 * 1000;

export interface ApiToken {
  id: number;
  name: string;
  scopes: TokenScope[];
  created_by: number | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

type Row = Omit<ApiToken, "scopes"> & { scopes: string };
const fromRow = (r: Row): ApiToken => ({ ...r, scopes: JSON.parse(r.scopes) as TokenScope[] });
const hashToken = (token: string) => crypto.createHash("sha256").update(token).digest("hex");

export const newTokenSchema = z.object({
  name: z.string().trim().min(1, "Give the token a name, e.g. “nightly pull on nas”.").max(80, "Use at most 80 characters."),
  scopes: z.array(tokenScopeSchema).min(1, "Choose at least one scope."),
  expires_in_days: z.number().int().min(1).max(3650).nullable().default(null),
});

export function createToken(inst: Instance, actor: Actor, input: z.input<typeof newTokenSchema>, now = new Date()): { token: string; row: ApiToken } {
  const v = newTokenSchema.parse(input);
  const token = TOKEN_PREFIX + crypto.randomBytes(32).toString("base64url");
  const expires = v.expires_in_days ? new Date(now.getTime() + v.expires_in_days * 86400_000).toISOString() : null;
  const id = Number(
    inst.db
      .prepare("INSERT INTO api_tokens (name, token_hash, scopes, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(v.name, hashToken(token), JSON.stringify([...new Set(v.scopes)]), actor.id, now.toISOString(), expires).lastInsertRowid,
  );
  audit(inst.db, actor, "token.create", v.name, { scopes: v.scopes, expires_at: expires });
  return { token, row: getToken(inst.db, id)! };
}

export function getToken(db: DB, id: number): ApiToken | null {
  const r = db.prepare("SELECT * FROM api_tokens WHERE id = ?").get(id) as Row | undefined;
  return r ? fromRow(r) : null;
}

export function listTokens(db: DB): ApiToken[] {
  return (db.prepare("SELECT * FROM api_tokens ORDER BY revoked_at IS NOT NULL, id DESC").all() as Row[]).map(fromRow);
}

export function revokeToken(inst: Instance, actor: Actor, id: number): void {
  const t = getToken(inst.db, id);
  if (!t) throw new AppError(404, "NOT_FOUND", "That token does not exist.");
  if (t.revoked_at) return;
  inst.db.prepare("UPDATE api_tokens SET revoked_at = ? WHERE id = ?").run(new Date().toISOString(), id);
  audit(inst.db, actor, "token.revoke", t.name);
}

/** The bearer token of an Authorization header, or null when there is none. */
export function bearerOf(header: string | null): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m ? m[1] : null;
}

/**
 * The token a request presents, checked for `scope`: 401 when it is not a
 * token Coffer issued, was revoked or has expired (each said plainly); 403
 * when its scopes do not cover this route. Each use is audited with the
 * token's name. Only unknown tokens (guesses) count against the address and
 * wait once it guessed ten times: the lookup comes first, so guesses from a
 * shared address (NAT, a proxy) never lock out the scripts there that hold
 * real tokens.
 */
export function authenticateToken(inst: Instance, token: string, scope: TokenScope, ip: string | null, what: string, now = new Date()): { token: ApiToken; actor: Actor } {
  const key = `token:${ip ?? "?"}`;
  const guess = (message: string) => {
    const wait = retryAfter(key, TOKEN_LIMIT, now.getTime());
    if (wait > 0) return new AppError(429, "RATE_LIMITED", `Too many wrong API tokens from this address. Try again in ${minutesText(wait)}.`);
    recordAttempt(key, TOKEN_LIMIT, now.getTime());
    return new AppError(401, "TOKEN_INVALID", message);
  };
  if (!TOKEN_RE.test(token)) throw guess("That is not a Coffer API token (they start coffer_pat_).");
  const row = inst.db.prepare("SELECT * FROM api_tokens WHERE token_hash = ?").get(hashToken(token)) as Row | undefined;
  if (!row) throw guess("This API token is not known to this Coffer. Create one in Settings → API tokens.");
  const t = fromRow(row);
  if (t.revoked_at) throw new AppError(401, "TOKEN_REVOKED", `The API token “${t.name}” was revoked on ${t.revoked_at.slice(0, 10)}.`);
  if (t.expires_at && Date.parse(t.expires_at) <= now.getTime()) throw new AppError(401, "TOKEN_EXPIRED", `The API token “${t.name}” expired on ${t.expires_at.slice(0, 10)}.`);
  if (!t.scopes.includes(scope)) throw new AppError(403, "TOKEN_SCOPE", `The API token “${t.name}” does not have the ${scope} scope this needs.`);
  const actor: Actor = systemActor(`token “${t.name}”`, ip);
  inst.db.prepare("UPDATE api_tokens SET last_used_at = ? WHERE id = ?").run(now.toISOString(), t.id);
  const audited = processWide("tokenAudited", () => new Map<number, number>());
  if (scope !== "metrics:read" || now.getTime() - (audited.get(t.id) ?? 0) >= QUIET_AUDIT_MS) {
    audited.set(t.id, now.getTime());
    audit(inst.db, actor, "token.use", what, { token: t.name, scope });
  }
  return { token: { ...t, last_used_at: now.toISOString() }, actor };
}
