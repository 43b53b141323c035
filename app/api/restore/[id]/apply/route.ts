import { route } from "@/app/_server/http";
import { authorizeRestore } from "@/app/_server/restore";
import { applyRestore } from "@/lib/backup/restore";

type Ctx = { params: Promise<{ id: string }> };

export const POST = route<Ctx>(async (req, ctx) => {
  const { inst, actor } = await authorizeRestore(req, { needPassword: true });
  return Response.json(await applyRestore(inst, (await ctx.params).id, actor));
});
