import { z } from "zod";
import { requireUser } from "@/app/_server/auth";
import { clientIp, readJson, requestSignal, route } from "@/app/_server/http";
import { restoreKeys, restoreKeysSchema } from "@/app/_server/restore";
import { storedSource } from "@/lib/backup/restore/browse";
import { documentChoiceSchema, restoreDocuments } from "@/lib/backup/restore/documents";

type Ctx = { params: Promise<{ name: string }> };

/**
 * Restore chosen documents of a stored backup into the running instance: JSON {ids} or
 * {deleted_since: true}, plus {identity} or {passphrase} for an encrypted backup.
 * Signed-in users: a member only their own documents (403 for another's), an admin anyone's.
 */
export const POST = route<Ctx>(async (req, ctx) => {
  const { inst, user } = await requireUser();
  const raw = z.record(z.string(), z.unknown()).parse(await readJson(req, 1024 * 1024));
  const { identity, passphrase, ...rest } = raw;
  const keys = restoreKeysSchema.parse({ identity, passphrase });
  const choice = documentChoiceSchema.parse(rest);
  const source = await storedSource(inst, (await ctx.params).name);
  const restored = await restoreDocuments(inst, user, clientIp(req.headers), source, choice, {
    keys: restoreKeys(keys),
    signal: requestSignal(req),
  });
  return Response.json({ restored }, { status: 201 });
});
