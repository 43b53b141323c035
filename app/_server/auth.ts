import "server-only";
import crypto from "node:crypto";
import { AsyncLocalStorage } from "node:async_hooks";
import { getServerSession, type NextAuthOptions, type Session } from "next-auth";
import CredentialsProvider from "next-auth/providers/credentials";
import { connection } from "next/server";
import { redirect, forbidden as forbiddenPage } from "next/navigation";
import { cookies, headers } from "next/headers";
import { isSetupComplete, type Instance } from "@/lib/instance";
import { getInstance } from "@/lib/runtime";
import { getUser, verifyLogin, type User } from "@/lib/auth/users";
import { sessionEpoch } from "@/lib/auth/epoch";
import { endSession, newSessionId, sessionEnded } from "@/lib/auth/sessions";
import { processWide } from "@/lib/util/process-wide";
import { unauthorized, forbidden, AppError } from "@/lib/errors";
import { authenticateToken, bearerOf, type ApiToken, type TokenScope } from "@/lib/auth/tokens";
import { userActor, type Actor } from "@/lib/audit/log";
import { clientIp } from "./http";

declare module "next-auth" {
  interface Session {
    user: { id: number; name: string; role: string; sv: number; ep: string; sid: string };
  }
}

/** One sign-in request: the device cookie it brought, and who it signed in (so the route can renew that cookie). */
export interface SignInContext {
  deviceToken: string | null;
  signedIn?: string;
}
export const signInContext = new AsyncLocalStorage<SignInContext>();

/**
 * Built per request from the instance's own keys/secret.key, so no
 * NEXTAUTH_SECRET is needed and a restore that brings other keys takes effect at once.
 */
export function authOptions(): NextAuthOptions {
  // Derive URLs from the request's Host; an operator's NEXTAUTH_URL still wins.
  process.env.AUTH_TRUST_HOST ??= "1";
  const inst = getInstance();
  return {
    secret: inst.secretKey.toString("hex"),
    session: { strategy: "jwt", maxAge: 30 * 24 * 3600 },
    pages: { signIn: "/login", error: "/login" },
    providers: [
      CredentialsProvider({
        name: "Coffer",
        credentials: { username: { label: "Username", type: "text" }, password: { label: "Password", type: "password" } },
        async authorize(credentials, req) {
          const username = String(credentials?.username ?? "");
          const password = String(credentials?.password ?? "");
          const h = new Headers();
          for (const [k, v] of Object.entries(req?.headers ?? {})) if (typeof v === "string") h.set(k, v);
          const ctx = signInContext.getStore();
          const result = await verifyLogin(getInstance(), username, password, clientIp(h), ctx?.deviceToken);
          // next-auth hands a thrown message to the client as `error`.
          if (!result.ok) throw new Error(result.message);
          const u = result.user;
          if (ctx) ctx.signedIn = u.username;
          return { id: String(u.id), name: u.username, role: u.role, sv: u.session_version } as never;
        },
      }),
    ],
    callbacks: {
      async jwt({ token, user }) {
        if (user) {
          const u = user as unknown as { id: string; role: string; sv: number };
          token.uid = Number(u.id);
          token.role = u.role;
          token.sv = u.sv;
          token.ep = sessionEpoch(getInstance().db);
          token.sid = newSessionId();
        }
        return token;
      },
      async session({ session, token }) {
        session.user = { id: token.uid as number, name: token.name as string, role: token.role as string, sv: token.sv as number, ep: token.ep as string, sid: token.sid as string };
        return session;
      },
    },
    events: {
      // Signing out ends this session on the server too: a copy of the token stops working.
      async signOut({ token }) {
        if (token) endSession(getInstance().db, token.sid, token.exp);
      },
    },
    logger: {
      error: (code, meta) => {
        // A wrong password is not a server error; everything else is worth a line.
        if (code !== "CREDENTIALS_SIGNIN_ERROR" && code !== "JWT_SESSION_ERROR") console.error("next-auth:", code, meta);
      },
      warn: () => {},
      debug: () => {},
    },
  };
}

/**
 * The signed-in user, re-read from the database on every request: a removed
 * user, a reset password (session_version) or a restore (session epoch) ends old sessions.
 */
/**
 * Decoding a session cookie (HKDF, then AES-GCM, in libuv's thread pool)
 * queues behind a backup's disk work; the result depends only on the cookie
 * and the key, so it is kept for a minute. What can end a session early
 * (sign-out, password reset, removal, restore) is checked against the
 * database on every request below, never cached.
 */
const DECODED_TTL_MS = 60_000;
const decodedSessions = () => processWide("decodedSessions", () => new Map<string, { session: Session | null; until: number }>());

async function decodedSession(inst: Instance): Promise<Session | null> {
  // The token, or its chunks when next-auth split a large one (…session-token.0, .1).
  const parts = (await cookies())
    .getAll()
    .filter((c) => /^(__Secure-)?next-auth\.session-token(\.\d+)?$/.test(c.name))
    .map((c) => `${c.name}=${c.value}`);
  if (!parts.length) return null;
  const key = crypto.createHash("sha256").update(inst.secretKey).update(parts.sort().join(";")).digest("hex");
  const cache = decodedSessions();
  const hit = cache.get(key);
  const now = Date.now();
  if (hit && hit.until > now) return hit.session;
  const session = await getServerSession(authOptions()).catch(() => null);
  if (cache.size > 1000) cache.clear();
  cache.set(key, { session, until: now + DECODED_TTL_MS });
  return session;
}

export async function sessionUser(inst: Instance = getInstance()): Promise<User | null> {
  const session = await decodedSession(inst);
  const id = session?.user?.id;
  if (!id) return null;
  const user = getUser(inst, id);
  if (!user || user.session_version !== session.user.sv || session.user.ep !== sessionEpoch(inst.db) || sessionEnded(inst.db, session.user.sid)) return null;
  return user;
}

/** For route handlers and server actions: 401 unless signed in. */
export async function requireUser(): Promise<{ inst: Instance; user: User }> {
  // A token where none is taken is said so, not silently treated as "not signed in".
  if (bearerOf((await headers()).get("authorization"))) {
    throw new AppError(401, "TOKEN_NOT_ACCEPTED", "API tokens are not accepted here: they work for listing and downloading backups, Back up now and /api/metrics only.");
  }
  const inst = getInstance();
  const user = await sessionUser(inst);
  if (!user) throw unauthorized();
  return { inst, user };
}

export async function requireAdmin(): Promise<{ inst: Instance; user: User }> {
  const r = await requireUser();
  if (r.user.role !== "admin") throw forbidden("Only an admin can do that.");
  return r;
}

/**
 * For the few route handlers automation may call: an admin's session, or an
 * API token with `scope` (Authorization: Bearer coffer_pat_…). Returns who
 * acts, for the audit log; `what` names the use there.
 */
export async function requireAdminOrToken(req: Request, scope: TokenScope, what: string): Promise<{ inst: Instance; actor: Actor; token: ApiToken | null }> {
  const bearer = bearerOf(req.headers.get("authorization"));
  const inst = getInstance();
  const ip = clientIp(req.headers);
  if (bearer) {
    const { token, actor } = authenticateToken(inst, bearer, scope, ip, what);
    return { inst, actor, token };
  }
  const { user } = await requireAdmin();
  return { inst, actor: userActor(user, ip), token: null };
}

export async function requestIp(): Promise<string | null> {
  return clientIp(await headers());
}

/** For pages: setup first, then sign-in; layouts call it for comfort, pages for safety. */
export async function pageUser(): Promise<{ inst: Instance; user: User }> {
  await connection();
  const inst = getInstance();
  if (!isSetupComplete(inst)) redirect("/setup");
  const user = await sessionUser(inst);
  if (!user) redirect("/login");
  return { inst, user };
}

export async function pageAdmin(): Promise<{ inst: Instance; user: User }> {
  const r = await pageUser();
  if (r.user.role !== "admin") forbiddenPage();
  return r;
}
