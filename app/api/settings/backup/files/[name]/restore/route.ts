import { requireAdmin } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { openStoredBackup } from "@/lib/backup/local/repository";
import { stageArchive } from "@/lib/backup/restore/staging";
import { keysFromJson } from "@/app/_server/restore";

type Ctx = { params: Promise<{ name: string }> };

/** Stage a stored backup; an encrypted one takes JSON {identity} or {passphrase}, used for this request only. */
export const POST = route<Ctx>(async (req, ctx) => {
  const { inst, user } = await requireAdmin();
  const keys = await keysFromJson(req);
  const source = await openStoredBackup(inst, (await ctx.params).name);
  return Response.json(await stageArchive(inst, source, { keys, owner: `user:${user.id}` }), { status: 201 });
});
