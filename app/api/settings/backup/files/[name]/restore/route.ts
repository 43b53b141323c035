import { requireAdmin } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { openStoredBackup } from "@/lib/backup/repository";
import { stageArchive } from "@/lib/backup/restore";

type Ctx = { params: Promise<{ name: string }> };

export const POST = route<Ctx>(async (_req, ctx) => {
  const { inst } = await requireAdmin();
  const source = await openStoredBackup(inst, (await ctx.params).name);
  return Response.json(await stageArchive(inst, source), { status: 201 });
});
