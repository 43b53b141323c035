import { requireUser } from "@/app/_server/auth";
import { route, clientIp, toWebStream, attachmentDisposition } from "@/app/_server/http";
import { getDocumentFor, openDocumentStream, deleteDocument } from "@/lib/vault/documents";
import { documentId, type DocumentCtx as Ctx } from "./id";

export const GET = route<Ctx>(async (_req, ctx) => {
  const { inst, user } = await requireUser();
  const doc = getDocumentFor(inst, user, await documentId(ctx));
  const body = toWebStream(openDocumentStream(inst, doc));
  return new Response(body, {
    headers: {
      "Content-Type": doc.content_type,
      // Uploaded HTML must never run on Coffer's origin.
      "Content-Disposition": attachmentDisposition(doc.name),
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": "sandbox; default-src 'none'",
      "Cache-Control": "private, no-store",
    },
  });
});

/** Into the trash (or gone at once when the trash keeps nothing); X-Coffer-Trashed says which. */
export const DELETE = route<Ctx>(async (req, ctx) => {
  const { inst, user } = await requireUser();
  const { trashed } = deleteDocument(inst, user, clientIp(req.headers), await documentId(ctx));
  return new Response(null, { status: 204, headers: { "X-Coffer-Trashed": trashed ? "1" : "0" } });
});
