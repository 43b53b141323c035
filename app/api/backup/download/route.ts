import { z } from "zod";
import { requireAdmin } from "@/app/_server/auth";
import { route, clientIp, toWebStream, attachmentDisposition } from "@/app/_server/http";
import { streamDownload } from "@/lib/backup/jobs/download";
import { selectableScopeSchema } from "@/lib/backup/format/tables";
import { userActor } from "@/lib/audit/log";

const query = z.object({ scope: selectableScopeSchema.default("full") });

export const GET = route(async (req) => {
  const { inst, user } = await requireAdmin();
  const { scope } = query.parse(Object.fromEntries(new URL(req.url).searchParams));
  const { name, encrypted, stream, abort } = streamDownload(inst, userActor(user, clientIp(req.headers)), scope);
  return new Response(toWebStream(stream, abort), {
    headers: {
      "Content-Type": encrypted ? "application/octet-stream" : "application/gzip",
      "Content-Disposition": attachmentDisposition(name),
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
});
