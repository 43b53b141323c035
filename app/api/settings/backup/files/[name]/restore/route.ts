import fs from "node:fs";
import { requireAdmin } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { storedBackupFile } from "@/lib/backup/store";
import { stageArchive } from "@/lib/backup/restore";

type Ctx = { params: Promise<{ name: string }> };

export const POST = route<Ctx>(async (_req, ctx) => {
  const { inst } = await requireAdmin();
  const { file } = storedBackupFile(inst, (await ctx.params).name);
  return Response.json(await stageArchive(inst, fs.createReadStream(file, { highWaterMark: 256 * 1024 })), { status: 201 });
});
