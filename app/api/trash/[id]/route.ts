import { requireUser } from "@/app/_server/auth";
import { route, clientIp } from "@/app/_server/http";
import { deleteForever } from "@/lib/vault/trash";
import { documentId, type DocumentCtx } from "@/app/api/documents/[id]/id";

/** Delete one trashed document forever (admins). */
export const DELETE = route<DocumentCtx>(async (req, ctx) => {
  const { inst, user } = await requireUser();
  deleteForever(inst, user, clientIp(req.headers), await documentId(ctx, "That document in the trash"));
  return new Response(null, { status: 204 });
});
