import { requireAdmin } from "@/app/_server/auth";
import { route, requestSignal } from "@/app/_server/http";
import { keysFromJson } from "@/app/_server/restore";
import { configuredRepository, closeRepository } from "@/lib/backup/offsite/repository";
import { stageOffsiteSnapshot } from "@/lib/backup/offsite/pull";

type Ctx = { params: Promise<{ name: string }> };

/** Stage an offsite snapshot (fetched and checked blob by blob); an encrypted one takes JSON {identity} or {passphrase}. */
export const POST = route<Ctx>(async (req, ctx) => {
  const { inst, user } = await requireAdmin();
  const keys = await keysFromJson(req);
  const repo = configuredRepository(inst);
  try {
    return Response.json(await stageOffsiteSnapshot(inst, repo, (await ctx.params).name, { keys, owner: `user:${user.id}`, signal: requestSignal(req) }), { status: 201 });
  } finally {
    closeRepository(repo);
  }
});
