import { requireUser } from "@/app/_server/auth";
import { route, clientIp } from "@/app/_server/http";
import { restoreFromTrash } from "@/lib/vault/trash";
import { documentId, type DocumentCtx } from "@/app/api/documents/[id]/id";

/** Take a document back out of the trash, as it was. */
export const POST = route<DocumentCtx>(async (req, ctx) => {
  const { inst, user } = await requireUser();
  const doc = restoreFromTrash(inst, user, clientIp(req.headers), await documentId(ctx, "That document in the trash"));
  return Response.json({ id: doc.id, name: doc.name, owner: doc.owner, size: doc.size });
});
