"use client";

import { useCallback, useEffect, useState } from "react";
import { KeyInput, hasKey, type RestoreKey } from "@/components/restore/KeyInput";
import { Alert, Button, Card, Input, Table } from "@/components/ui";
import { formatBytes } from "@/lib/format";
import { listBackupDocuments, restoreBackupDocuments } from "./documents-actions";
import type { SourceSpec } from "@/lib/backup/restore/sources";
import type { BrowseResult } from "@/lib/backup/restore/browse";
import type { RestoredDocument } from "@/lib/backup/restore/documents";

const BADGE: Record<string, string> = {
  same: "bg-zinc-100 text-zinc-700 dark:bg-zinc-800 dark:text-zinc-300",
  changed: "bg-amber-100 text-amber-800 dark:bg-amber-900/40 dark:text-amber-200",
  deleted_since: "bg-red-100 text-red-800 dark:bg-red-900/40 dark:text-red-200",
};
const LABEL: Record<string, string> = { same: "Same as now", changed: "Changed since", deleted_since: "Deleted since" };

/** What a backup holds against now, and restoring chosen documents from it: one component for every kind of source. */
export function BackupDocuments({ spec }: { spec: SourceSpec }) {
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
    const r = await listBackupDocuments(spec, key, q);
    setBusy(false);
    if (r.ok) {
      setList(r.value);
      setError(null);
    } else {
      if (r.code === "KEY_REQUIRED" || r.code === "KEY_MISMATCH" || r.code === "KEY_INVALID") setNeedKey(true);
      setError(r.error);
    }
  }, [spec, key, q]);

  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const restore = async (choice: { ids: number[] } | { deleted_since: true }) => {
    setBusy(true);
    const r = await restoreBackupDocuments(spec, choice, key);
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
        <Card className="space-y-3">
          <KeyInput id="browse-key" onChange={setKey} error={null} />
          <Button type="button" disabled={!hasKey(key)} busy={busy} busyLabel="Opening…" onClick={() => void load()}>
            Open backup
          </Button>
        </Card>
      )}
      <form
        className="flex gap-2"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <Input aria-label="Filter by name" placeholder="Filter by name" value={q} onChange={(e) => setQ(e.target.value)} className="max-w-xs" />
        <Button type="submit" variant="secondary" disabled={busy}>
          Filter
        </Button>
      </form>
      {error && <Alert>{error}</Alert>}
      {restored && (
        <div data-testid="restored">
          <Alert tone="success">
            {restored.length === 0 ? "Nothing to restore." : `Restored ${restored.length} document${restored.length === 1 ? "" : "s"}: ${restored.map((d) => (d.id === d.original_id ? d.name : `${d.name} (new id ${d.id})`)).join(", ")}.`}
          </Alert>
        </div>
      )}
      {list && (
        <>
          <div className="flex flex-wrap gap-2">
            <Button type="button" disabled={busy || chosen.size === 0} busy={busy} busyLabel="Restoring…" onClick={() => void restore({ ids: [...chosen] })}>
              Restore selected ({chosen.size})
            </Button>
            <Button type="button" variant="secondary" disabled={busy || !list.documents.some((d) => d.state === "deleted_since")} onClick={() => void restore({ deleted_since: true })}>
              Restore everything deleted since
            </Button>
          </div>
          <Table
            head={
              <>
                <th className="w-8 px-4 py-2">
                  <span className="sr-only">Choose</span>
                </th>
                <th className="px-4 py-2">Name</th>
                <th className="hidden px-4 py-2 sm:table-cell">Owner</th>
                <th className="hidden px-4 py-2 sm:table-cell">Size</th>
                <th className="hidden px-4 py-2 md:table-cell">Created</th>
                <th className="px-4 py-2">State</th>
              </>
            }
          >
            {list.documents.map((d) => (
              <tr key={d.id} data-testid={`backup-doc-${d.id}`}>
                <td className="px-4 py-2">
                  <input type="checkbox" className="h-4 w-4 accent-emerald-700" aria-label={`Choose ${d.name}`} checked={chosen.has(d.id)} onChange={() => toggle(d.id)} />
                </td>
                <td className="px-4 py-2">
                  {d.name}
                  {d.in_trash ? <span className="text-zinc-600 dark:text-zinc-400"> (in the trash then)</span> : ""}
                  <span className="block text-xs text-zinc-600 sm:hidden dark:text-zinc-400">
                    {d.owner ?? "(unknown)"} · {formatBytes(d.size)}
                  </span>
                </td>
                <td className="hidden px-4 py-2 sm:table-cell">{d.owner ?? "(unknown)"}</td>
                <td className="hidden whitespace-nowrap px-4 py-2 tabular-nums sm:table-cell">{formatBytes(d.size)}</td>
                <td className="hidden whitespace-nowrap px-4 py-2 md:table-cell">{d.created_at.slice(0, 10)}</td>
                <td className="px-4 py-2">
                  <span className={`whitespace-nowrap rounded px-2 py-0.5 text-xs ${BADGE[d.state]}`}>{LABEL[d.state]}</span>
                </td>
              </tr>
            ))}
            {list.documents.length === 0 && (
              <tr>
                <td colSpan={6} className="px-4 py-4 text-zinc-600 dark:text-zinc-400">
                  No documents{q ? " match that name" : ""}.
                </td>
              </tr>
            )}
          </Table>
        </>
      )}
    </div>
  );
}
