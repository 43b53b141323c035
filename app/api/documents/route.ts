import { requireUser } from "@/app/_server/auth";
import { route, clientIp, requestBody } from "@/app/_server/http";
import { createDocument, listDocuments } from "@/lib/vault/documents";
import { currentSettings } from "@/lib/settings/store";
import { AppError } from "@/lib/errors";

export const GET = route(async () => {
  const { inst, user } = await requireUser();
  return Response.json({ documents: listDocuments(inst, user) });
});

/** Raw body, streamed to the vault: no multipart, no buffering, so an upload of any size holds a few chunks in memory. */
export const POST = route(async (req) => {
  const { inst, user } = await requireUser();
  if (!req.body) throw new AppError(400, "EMPTY_BODY", "Send the file's bytes as the request body.");
  const url = new URL(req.url);
  const maxBytes = currentSettings(inst.paths.settings).documents.max_upload_bytes;
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw new AppError(413, "TOO_LARGE", "The file is larger than the upload limit.");
  const doc = await createDocument(inst, user, clientIp(req.headers), {
    name: url.searchParams.get("name") ?? "",
    contentType: req.headers.get("content-type"),
    body: requestBody(req),
    maxBytes,
  });
  return Response.json({ id: doc.id, name: doc.name, sha256: doc.sha256, size: doc.size, content_type: doc.content_type }, { status: 201 });
});
