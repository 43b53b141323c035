import type { Metadata } from "next";
import { pageUser } from "@/app/_server/auth";
import { listTrash, trashedBytes } from "@/lib/vault/trash";
import { currentSettings } from "@/lib/settings/store";
import { PageTitle } from "@/components/ui";
import { TrashTable } from "@/components/documents/TrashTable";
import { formatBytes } from "@/lib/format";

export const metadata: Metadata = { title: "Trash" };

export default async function TrashPage() {
  const { inst, user } = await pageUser();
  const admin = user.role === "admin";
  const days = currentSettings(inst.paths.settings).trash.retention_days;
  const bytes = trashedBytes(inst, admin ? null : user.id);
  const keeps =
    days === 0
      ? "The trash is turned off (trash.retention_days: 0 in settings.yaml): deleted documents are gone at once."
      : `Deleted documents stay here ${days} day${days === 1 ? "" : "s"}, then are erased for good.`;
  return (
    <>
      <PageTitle description={`${keeps} ${admin ? "You see everyone's; members see only their own." : "Restore one to put it back where it was."}`}>Trash</PageTitle>
      <p className="mb-4 text-sm text-zinc-600 dark:text-zinc-400" data-testid="trash-usage">
        {formatBytes(bytes)} in the trash{admin ? "" : ", counted in your storage use until it is erased"}.
      </p>
      <TrashTable
        admin={admin}
        documents={listTrash(inst, user).map((d) => ({ id: d.id, name: d.name, size: d.size, owner: d.owner, deletedAt: d.deleted_at, purgeAt: d.purge_at }))}
      />
    </>
  );
}
