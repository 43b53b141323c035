import { Readable } from "node:stream";
import { requireUser } from "@/app/_server/auth";
import { route, clientIp } from "@/app/_server/http";
import { getDocumentFor, openDocumentStream, deleteDocument } from "@/lib/vault/documents";
import { notFound } from "@/lib/errors";

type Ctx = { params: Promise<{ id: string }> };

async function documentId(ctx: Ctx): Promise<number> {
  const { id } = await ctx.params;
  if (!/^[1-9][0-9]{0,15}$/.test(id)) throw notFound("That document");
  return Number(id);
}

function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export const GET = route<Ctx>(async (_req, ctx) => {
  const { inst, user } = await requireUser();
  const doc = getDocumentFor(inst, user, await documentId(ctx));
  const body = Readable.toWeb(openDocumentStream(inst, doc)) as ReadableStream;
  return new Response(body, {
    headers: {
      "Content-Type": doc.content_type,
      "Content-Length": String(doc.size),
      // Uploaded HTML must never run on Coffer's origin.
      "Content-Disposition": contentDisposition(doc.name),
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
