"use client";

import { useState } from "react";
import { Alert, Button, Card } from "@/components/ui";
import { KeyInput, hasKey, type RestoreKey } from "@/components/restore/KeyInput";
import { RestoreFlow, type Preview } from "@/components/restore/RestoreFlow";
import { StoredBackupsTable, type StoredRow } from "./StoredBackupsTable";
import { OffsiteSnapshots } from "./OffsiteSnapshots";
import { PointInTimeRestore, type ContinuousWindow } from "./PointInTimeRestore";

/** Stored backups, offsite snapshots and the restore panel share one piece of state: the staged restore. */
export function BackupManager({ backups, offsite, continuous }: { backups: StoredRow[]; offsite: boolean; continuous: ContinuousWindow }) {
  const [staged, setStaged] = useState<Preview | null>(null);
  const [staging, setStaging] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  // An encrypted stored backup asks for its key first.
  const [needsKey, setNeedsKey] = useState<string | null>(null);
  const [key, setKey] = useState<RestoreKey>({});

  // Which list the backup being restored comes from.
  const [source, setSource] = useState<"stored" | "offsite">("stored");

  async function restoreStored(name: string, k?: RestoreKey, from: "stored" | "offsite" = source, encrypted?: boolean) {
    setSource(from);
    if (!k && (encrypted ?? backups.find((b) => b.name === name)?.encryption)) {
      setNeedsKey(name);
      setError(null);
      return;
    }
    setStaging(name);
    setError(null);
    const url = from === "offsite" ? `/api/settings/backup/offsite/snapshots/${encodeURIComponent(name)}/restore` : `/api/settings/backup/files/${encodeURIComponent(name)}/restore`;
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(k ?? {}),
    });
    const data = await res.json().catch(() => null);
    setStaging(null);
    if (res.ok) {
      setNeedsKey(null);
      setStaged(data as Preview);
      document.getElementById("restore")?.scrollIntoView({ behavior: "smooth" });
    } else {
      setError(data?.error?.message ?? `Could not check that backup (HTTP ${res.status}).`);
      if (/^KEY_/.test(data?.error?.code ?? "")) setNeedsKey(name);
    }
  }

  return (
    <>
      {error && <Alert>{error}</Alert>}
      <StoredBackupsTable backups={backups} onRestore={(n) => restoreStored(n, undefined, "stored")} staging={source === "stored" ? staging : null} />
      {offsite && (
        <>
          <h2 className="mb-3 mt-8 text-lg font-semibold">Offsite snapshots</h2>
          <OffsiteSnapshots onRestore={(s) => restoreStored(s.name, undefined, "offsite", s.encrypted)} staging={source === "offsite" ? staging : null} />
        </>
      )}
      {needsKey && (
        <div className="mt-3 space-y-3">
          <p className="text-sm">
            Restore <span className="font-mono text-xs">{needsKey}</span>:
          </p>
          <KeyInput id="stored-key" onChange={setKey} />
          <div className="flex gap-2">
            <Button type="button" disabled={!hasKey(key)} busy={staging === needsKey} busyLabel="Checking…" onClick={() => restoreStored(needsKey, key)}>
              Check this backup
            </Button>
            <Button type="button" variant="ghost" onClick={() => setNeedsKey(null)}>
              Cancel
            </Button>
          </div>
        </div>
      )}
      <h2 id="point-in-time" className="mb-3 mt-8 text-lg font-semibold">
        Restore to a point in time
      </h2>
      <PointInTimeRestore
        window={continuous}
        onStaged={(p) => {
          setStaged(p);
          document.getElementById("restore")?.scrollIntoView({ behavior: "smooth" });
        }}
      />
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
