import fs from "node:fs";
import { requireAdmin } from "@/app/_server/auth";
import { route, clientIp, toWebStream, attachmentDisposition } from "@/app/_server/http";
import { deleteStoredBackup, storedBackupFile } from "@/lib/backup/store";

type Ctx = { params: Promise<{ name: string }> };

export const GET = route<Ctx>(async (_req, ctx) => {
  const { inst } = await requireAdmin();
  const { name } = await ctx.params;
  const { file } = storedBackupFile(inst, name);
  return new Response(toWebStream(fs.createReadStream(file, { highWaterMark: 1024 * 1024 })), {
    headers: {
      "Content-Type": "application/gzip",
      "Content-Disposition": attachmentDisposition(name),
      "Cache-Control": "no-store",
    },
  });
});

export const DELETE = route<Ctx>(async (req, ctx) => {
  const { inst, user } = await requireAdmin();
  const { name } = await ctx.params;
  deleteStoredBackup(inst, { id: user.id, name: user.username, ip: clientIp(req.headers) }, name);
  return new Response(null, { status: 204 });
});
