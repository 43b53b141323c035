import { route } from "@/app/_server/http";
import { authorizeRestore } from "@/app/_server/restore";
import { discardStaged } from "@/lib/backup/restore/staging";

type Ctx = { params: Promise<{ id: string }> };

/** Discard a staged restore. It changes nothing live, so an admin needs no password for it. */
export const DELETE = route<Ctx>(async (req, ctx) => {
  const { inst } = await authorizeRestore(req, { needPassword: false });
  discardStaged(inst, (await ctx.params).id);
  return new Response(null, { status: 204 });
});
