import "server-only";
import { Readable } from "node:stream";
import { z } from "zod";
import { isSetupComplete, type Instance } from "@/lib/instance";
import { getInstance } from "@/lib/runtime";
import { requireSetupCode } from "@/lib/auth/setup";
import { confirmPassword } from "@/lib/auth/users";
import type { Actor } from "@/lib/audit/log";
import { AppError } from "@/lib/errors";
import { restoreCapBytes, stageArchive } from "@/lib/backup/restore";
import { requireAdmin } from "./auth";
import { clientIp, readJson } from "./http";

/** Stream a raw request body (the archive) into staging; a declared size over the cap is refused before reading. */
export async function stageRequestBody(inst: Instance, req: Request) {
  if (!req.body) throw new AppError(400, "EMPTY_BODY", "Send the backup file (.tar.gz) as the request body.");
  const cap = restoreCapBytes(inst);
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > cap) throw new AppError(413, "TOO_LARGE", "This backup is larger than this server can take (COFFER_RESTORE_MAX_BYTES or free disk).");
  return stageArchive(inst, Readable.fromWeb(req.body as never), { maxBytes: cap });
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
    return { inst, actor: { id: null, name: "setup", ip } };
  }
  const { user } = await requireAdmin();
  if (opts.needPassword) {
    const { password } = z.object({ password: z.string().min(1, "Enter your password.").max(1024) }).parse(await readJson(req));
    await confirmPassword(inst, user, password, ip);
  }
  return { inst, actor: { id: user.id, name: user.username, ip } };
}
