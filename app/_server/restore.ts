import "server-only";
import { z } from "zod";
import { isSetupComplete, type Instance } from "@/lib/instance";
import { getInstance } from "@/lib/runtime";
import { requireSetupCode } from "@/lib/auth/setup";
import { confirmPassword } from "@/lib/auth/users";
import { userActor, systemActor, type Actor } from "@/lib/audit/log";
import { AppError } from "@/lib/errors";
import { restoreCapBytes, stageArchive } from "@/lib/backup/restore/staging";
import { requireAdmin } from "./auth";
import { parseIdentities, type AgeError, type AgeKeys } from "@/lib/crypto/age";
import { ageArchiveError } from "@/lib/backup/format/reader";
import { clientIp, readJson, requestBody } from "./http";

/**
 * The key for an encrypted backup, from this request only: held in memory
 * for the one staging, never stored, never logged. An identity may list
 * several keys separated by commas or newlines.
 */
export function restoreKeys(input: { identity?: string | null; passphrase?: string | null }): AgeKeys | undefined {
  const keys: AgeKeys = {};
  try {
    if (input.identity?.trim()) keys.identities = parseIdentities(input.identity.replace(/,/g, "\n"));
  } catch (err) {
    throw ageArchiveError(err as AgeError);
  }
  if (input.passphrase) keys.passphrase = input.passphrase;
  return keys.identities || keys.passphrase !== undefined ? keys : undefined;
}

/** Keys sent with a raw-body upload: x-coffer-identity, x-coffer-passphrase (or -b64, for passphrases a header cannot carry). */
export function keysFromHeaders(h: Headers): AgeKeys | undefined {
  const b64 = h.get("x-coffer-passphrase-b64");
  return restoreKeys({ identity: h.get("x-coffer-identity"), passphrase: b64 ? Buffer.from(b64, "base64").toString("utf8") : h.get("x-coffer-passphrase") });
}

/** An encrypted backup's key as JSON {identity?, passphrase?}, used for one request only. */
export const restoreKeysSchema = z.object({ identity: z.string().max(64 * 1024).optional(), passphrase: z.string().max(1024).optional() });

/** Keys sent as JSON {identity?, passphrase?}; an empty body means none. */
export async function keysFromJson(req: Request): Promise<AgeKeys | undefined> {
  return restoreKeys(restoreKeysSchema.parse(await readJson(req, 64 * 1024, { empty: {} })));
}

/** Stream a raw request body (the archive) into staging; a declared size over the cap is refused before reading. */
export async function stageRequestBody(inst: Instance, req: Request, owner: string) {
  if (!req.body) throw new AppError(400, "EMPTY_BODY", "Send the backup file (.tar.gz or .tar.gz.age) as the request body.");
  const keys = keysFromHeaders(req.headers);
  const cap = restoreCapBytes(inst);
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > cap) throw new AppError(413, "TOO_LARGE", "This backup is larger than this server can take (COFFER_RESTORE_MAX_BYTES or free disk).");
  return stageArchive(inst, requestBody(req), { maxBytes: cap, keys, owner });
}

/**
 * Who may apply or discard a staged restore: while setup is pending, whoever
 * holds the setup code (x-setup-token); after, an admin, who re-enters their
 * password to apply.
 */
export async function authorizeRestore(req: Request, opts: { needPassword: boolean }): Promise<{ inst: Instance; actor: Actor }> {
  const inst = getInstance();
  const ip = clientIp(req.headers);
  if (!isSetupComplete(inst)) {
    requireSetupCode(inst, req.headers.get("x-setup-token"), ip);
    return { inst, actor: systemActor("setup", ip) };
  }
  const { user } = await requireAdmin();
  if (opts.needPassword) {
    const { password } = z.object({ password: z.string().min(1, "Enter your password.").max(1024) }).parse(await readJson(req));
    await confirmPassword(inst, user, password, ip);
  }
  return { inst, actor: userActor(user, ip) };
}
