import { z } from "zod";
import { requireUser } from "@/app/_server/auth";
import { clientIp, readJson, requestSignal, route } from "@/app/_server/http";
import { restoreKeys } from "@/app/_server/restore";
import { storedSource } from "@/lib/backup/restore/browse";
import { MAX_CHOSEN, restoreDocuments } from "@/lib/backup/restore/documents";
import { AppError } from "@/lib/errors";

type Ctx = { params: Promise<{ name: string }> };

const body = z.object({
  ids: z.array(z.number().int().positive()).min(1).max(MAX_CHOSEN).optional(),
  deleted_since: z.literal(true).optional(),
  identity: z.string().max(64 * 1024).optional(),
  passphrase: z.string().max(1024).optional(),
});

/**
 * Restore chosen documents of a stored backup into the running instance: JSON {ids} or
 * {deleted_since: true}, plus {identity} or {passphrase} for an encrypted backup.
 * Signed-in users: a member only their own documents (403 for another's), an admin anyone's.
 */
export const POST = route<Ctx>(async (req, ctx) => {
  const { inst, user } = await requireUser();
  const input = body.parse(await readJson(req, 1024 * 1024));
  if (!input.ids === !input.deleted_since) throw new AppError(400, "BAD_JSON", 'Send either {"ids": [...]} or {"deleted_since": true}.');
  const source = await storedSource(inst, (await ctx.params).name);
  const restored = await restoreDocuments(inst, user, clientIp(req.headers), source, input.ids ? { ids: input.ids } : { deleted_since: true }, {
    keys: restoreKeys(input),
    signal: requestSignal(req),
  });
  return Response.json({ restored }, { status: 201 });
});
