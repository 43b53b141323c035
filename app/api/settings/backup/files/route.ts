import { requireAdminOrToken } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { listStoredBackups } from "@/lib/backup/local/repository";

/** Stored backups, newest first: an admin, or an API token with backup:read. */
export const GET = route(async (req) => {
  const { inst } = await requireAdminOrToken(req, "backup:read", "list backups");
  return Response.json({ backups: await listStoredBackups(inst) }, { headers: { "Cache-Control": "no-store" } });
});
