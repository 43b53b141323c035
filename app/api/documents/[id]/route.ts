import { requireUser } from "@/app/_server/auth";
import { route, clientIp, toWebStream, attachmentDisposition } from "@/app/_server/http";
import { getDocumentFor, openDocumentStream, deleteDocument } from "@/lib/vault/documents";
import { notFound } from "@/lib/errors";

type Ctx = { params: Promise<{ id: string }> };

async function documentId(ctx: Ctx): Promise<number> {
  const { id } = await ctx.params;
  if (!/^[1-9][0-9]{0,15}$/.test(id)) throw notFound("That document");
  return Number(id);
}

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

export const DELETE = route<Ctx>(async (req, ctx) => {
  const { inst, user } = await requireUser();
  deleteDocument(inst, user, clientIp(req.headers), await documentId(ctx));
  return new Response(null, { status: 204 });
});
