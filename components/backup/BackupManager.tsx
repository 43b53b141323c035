"use client";

import { useState } from "react";
import { Alert, Card } from "@/components/ui";
import { RestoreFlow, type Preview } from "@/components/restore/RestoreFlow";
import { StoredBackupsTable, type StoredRow } from "./StoredBackupsTable";

/** Stored backups and the restore panel share one piece of state: the staged restore. */
export function BackupManager({ backups }: { backups: StoredRow[] }) {
  const [staged, setStaged] = useState<Preview | null>(null);
  const [staging, setStaging] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function restoreStored(name: string) {
    setStaging(name);
    setError(null);
    const res = await fetch(`/api/settings/backup/files/${encodeURIComponent(name)}/restore`, { method: "POST" });
    const data = await res.json().catch(() => null);
    setStaging(null);
    if (res.ok) {
      setStaged(data as Preview);
      document.getElementById("restore")?.scrollIntoView({ behavior: "smooth" });
    } else setError(data?.error?.message ?? `Could not check that backup (HTTP ${res.status}).`);
  }

  return (
    <>
      {error && <Alert>{error}</Alert>}
      <StoredBackupsTable backups={backups} onRestore={restoreStored} staging={staging} />
      <h2 id="restore" className="mb-3 mt-8 text-lg font-semibold">
        Restore
      </h2>
      <Card className="space-y-3">
        {!staged && (
          <p className="text-sm text-zinc-600 dark:text-zinc-400">
            Press Restore on a stored backup above, or upload a backup file. Nothing changes until you confirm.
          </p>
        )}
        <RestoreFlow mode={{ kind: "admin" }} staged={staged} onCancel={() => setStaged(null)} />
      </Card>
    </>
  );
}
