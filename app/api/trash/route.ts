import { requireUser } from "@/app/_server/auth";
import { route, clientIp } from "@/app/_server/http";
import { listTrash, emptyTrash, trashedBytes } from "@/lib/vault/trash";
import { currentSettings } from "@/lib/settings/store";

/** The caller's trashed documents (an admin's: everyone's), with when each is purged. */
export const GET = route(async () => {
  const { inst, user } = await requireUser();
  const documents = listTrash(inst, user).map((d) => ({
    id: d.id,
    name: d.name,
    owner: d.owner,
    size: d.size,
    content_type: d.content_type,
    created_at: d.created_at,
    deleted_at: d.deleted_at,
    purge_at: d.purge_at,
  }));
  return Response.json({
    documents,
    bytes: trashedBytes(inst, user.role === "admin" ? null : user.id),
    retention_days: currentSettings(inst.paths.settings).trash.retention_days,
  });
});

/** Empty the trash (admins). */
export const DELETE = route(async (req) => {
  const { inst, user } = await requireUser();
  return Response.json({ erased: emptyTrash(inst, user, clientIp(req.headers)) });
});
