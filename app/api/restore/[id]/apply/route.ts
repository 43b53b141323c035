import { route } from "@/app/_server/http";
import { authorizeRestore } from "@/app/_server/restore";
import { applyRestore } from "@/lib/backup/restore/apply";
import { webRestoreHost } from "@/lib/runtime";

type Ctx = { params: Promise<{ id: string }> };

export const POST = route<Ctx>(async (req, ctx) => {
  const { inst, actor } = await authorizeRestore(req, { needPassword: true });
  // The web host installs the restored instance; it is not part of the answer.
  const { instance: _served, ...result } = await applyRestore(inst, (await ctx.params).id, actor, webRestoreHost);
  return Response.json(result);
});
