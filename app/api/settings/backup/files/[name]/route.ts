import { requireAdmin, requireAdminOrToken } from "@/app/_server/auth";
import { route, clientIp, toWebStream, attachmentDisposition } from "@/app/_server/http";
import { deleteStoredBackup, openStoredBackup } from "@/lib/backup/local/repository";
import { isEncryptedArchiveName } from "@/lib/backup/format/tables";
import { openBackupForToken } from "@/lib/auth/token-download";
import { userActor } from "@/lib/audit/log";

type Ctx = { params: Promise<{ name: string }> };

/** One stored backup, streamed: an admin, or an API token with backup:read (encrypted archives only). */
export const GET = route<Ctx>(async (req, ctx) => {
  const { name } = await ctx.params;
  const { inst, token } = await requireAdminOrToken(req, "backup:read", `download ${name}`);
  return new Response(toWebStream(token ? await openBackupForToken(inst, name) : await openStoredBackup(inst, name)), {
    headers: {
      "Content-Type": isEncryptedArchiveName(name) ? "application/octet-stream" : "application/gzip",
      "Content-Disposition": attachmentDisposition(name),
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
});

export const DELETE = route<Ctx>(async (req, ctx) => {
  const { inst, user } = await requireAdmin();
  const { name } = await ctx.params;
  await deleteStoredBackup(inst, userActor(user, clientIp(req.headers)), name);
  return new Response(null, { status: 204 });
});
