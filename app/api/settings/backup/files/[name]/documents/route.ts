import { requireUser } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { keysFromHeaders } from "@/app/_server/restore";
import { browseBackup, storedSource } from "@/lib/backup/restore/browse";

type Ctx = { params: Promise<{ name: string }> };

/**
 * The documents a stored backup holds, with their state against now (?q= filters by name).
 * Signed-in users: an admin sees everyone's documents, a member only their own (browseBackup
 * filters per document). An encrypted backup takes x-coffer-identity or x-coffer-passphrase.
 */
export const GET = route<Ctx>(async (req, ctx) => {
  const { inst, user } = await requireUser();
  const q = new URL(req.url).searchParams.get("q")?.slice(0, 255) ?? undefined;
  const source = await storedSource(inst, (await ctx.params).name);
  return Response.json(await browseBackup(inst, user, source, { keys: keysFromHeaders(req.headers), q }));
});
