import { requireAdmin } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { listStoredBackups } from "@/lib/backup/repository";

export const GET = route(async () => {
  const { inst } = await requireAdmin();
  return Response.json({ backups: await listStoredBackups(inst) }, { headers: { "Cache-Control": "no-store" } });
});
