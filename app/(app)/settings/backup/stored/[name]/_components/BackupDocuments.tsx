"use client";

import { useCallback, useEffect, useState } from "react";
import { KeyInput, hasKey, type RestoreKey } from "@/components/restore/KeyInput";
import { listBackupDocuments, restoreBackupDocuments } from "../actions";
import type { BrowseResult } from "@/lib/backup/restore/browse";
import type { RestoredDocument } from "@/lib/backup/restore/documents";

const BADGE: Record<string, string> = {
  same: "bg-zinc-100 text-zinc-700 dark:bg-zinc-800 dark:text-zinc-300",
  changed: "bg-amber-100 text-amber-800 dark:bg-amber-900/40 dark:text-amber-200",
  deleted_since: "bg-red-100 text-red-800 dark:bg-red-900/40 dark:text-red-200",
};
const LABEL: Record<string, string> = { same: "Same as now", changed: "Changed since", deleted_since: "Deleted since" };

export function BackupDocuments({ name }: { name: string }) {
  const [key, setKey] = useState<RestoreKey>({});
  const [needKey, setNeedKey] = useState(false);
  const [q, setQ] = useState("");
  const [list, setList] = useState<BrowseResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [chosen, setChosen] = useState<Set<number>>(new Set());
  const [restored, setRestored] = useState<RestoredDocument[] | null>(null);

  const load = useCallback(async () => {
    setBusy(true);
    const r = await listBackupDocuments(name, key, q);
    setBusy(false);
    if (r.ok) {
      setList(r.value);
      setError(null);
    } else {
      if (r.code === "KEY_REQUIRED" || r.code === "KEY_MISMATCH" || r.code === "KEY_INVALID") setNeedKey(true);
      setError(r.error);
    }
  }, [name, key, q]);

  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const restore = async (choice: { ids: number[] } | { deleted_since: true }) => {
    setBusy(true);
    const r = await restoreBackupDocuments(name, choice, key);
    setBusy(false);
    if (r.ok) {
      setRestored(r.value);
      setChosen(new Set());
      setError(null);
      await load();
    } else setError(r.error);
  };

  const toggle = (id: number) => setChosen((s) => {
    const n = new Set(s);
    if (n.has(id)) n.delete(id);
    else n.add(id);
    return n;
  });

  return (
    <div className="space-y-4" data-testid="backup-documents">
      {needKey && (
        <div className="space-y-2">
          <KeyInput id="browse-key" onChange={setKey} error={null} />
          <button type="button" className="rounded bg-zinc-900 px-3 py-1.5 text-sm text-white dark:bg-zinc-100 dark:text-zinc-900" disabled={!hasKey(key) || busy} onClick={() => void load()}>
            Open backup
          </button>
        </div>
      )}
      <form
        className="flex gap-2"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <input aria-label="Filter by name" placeholder="Filter by name" value={q} onChange={(e) => setQ(e.target.value)} className="rounded border px-2 py-1 text-sm" />
        <button type="submit" className="rounded border px-3 py-1 text-sm" disabled={busy}>Filter</button>
      </form>
      {error && <p role="alert" className="text-sm text-red-700 dark:text-red-400">{error}</p>}
      {restored && (
        <p role="status" className="text-sm text-green-700 dark:text-green-400" data-testid="restored">
          {restored.length === 0 ? "Nothing to restore." : `Restored ${restored.length} document${restored.length === 1 ? "" : "s"}: ${restored.map((d) => (d.id === d.original_id ? d.name : `${d.name} (new id ${d.id})`)).join(", ")}.`}
        </p>
      )}
      {list && (
        <>
          <div className="flex gap-2">
            <button type="button" className="rounded bg-zinc-900 px-3 py-1.5 text-sm text-white disabled:opacity-50 dark:bg-zinc-100 dark:text-zinc-900" disabled={busy || chosen.size === 0} onClick={() => void restore({ ids: [...chosen] })}>
              Restore selected ({chosen.size})
            </button>
            <button type="button" className="rounded border px-3 py-1.5 text-sm disabled:opacity-50" disabled={busy || !list.documents.some((d) => d.state === "deleted_since")} onClick={() => void restore({ deleted_since: true })}>
              Restore everything deleted since
            </button>
          </div>
          <table className="w-full text-left text-sm">
            <thead>
              <tr>
                <th className="w-8" />
                <th>Name</th>
                <th>Owner</th>
                <th>Size</th>
                <th>Created</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {list.documents.map((d) => (
                <tr key={d.id} data-testid={`backup-doc-${d.id}`}>
                  <td>
                    <input type="checkbox" aria-label={`Choose ${d.name}`} checked={chosen.has(d.id)} onChange={() => toggle(d.id)} />
                  </td>
                  <td>{d.name}{d.in_trash ? " (in the trash then)" : ""}</td>
                  <td>{d.owner ?? "(unknown)"}</td>
                  <td>{d.size.toLocaleString()} B</td>
                  <td>{d.created_at.slice(0, 10)}</td>
                  <td>
                    <span className={`rounded px-2 py-0.5 text-xs ${BADGE[d.state]}`}>{LABEL[d.state]}</span>
                  </td>
                </tr>
              ))}
              {list.documents.length === 0 && (
                <tr>
                  <td colSpan={6} className="py-4 text-zinc-500">No documents{q ? " match that name" : ""}.</td>
                </tr>
              )}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
