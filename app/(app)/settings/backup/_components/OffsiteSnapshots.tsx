"use client";

import Link from "next/link";
import { useEffect, useState } from "react";
import { Alert, Button, LockIcon, Table } from "@/components/ui";
import { formatBytes, formatDateTime } from "@/lib/format";
import type { OffsiteSnapshot } from "@/lib/backup/offsite/repository";
import { scopeLabel } from "@/lib/backup/format/tables";

/**
 * The snapshots in the offsite repository, read from the bucket when the page
 * opens (the bucket may be slow or away: the rest of the page does not wait).
 */
export function OffsiteSnapshots({ onRestore, staging }: { onRestore: (s: OffsiteSnapshot) => void; staging: string | null }) {
  const [data, setData] = useState<{ location: string; snapshots: OffsiteSnapshot[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    fetch("/api/settings/backup/offsite/snapshots", { cache: "no-store" })
      .then(async (res) => {
        const body = await res.json().catch(() => null);
        if (!live) return;
        if (res.ok) setData(body);
        else setError(body?.error?.message ?? `The bucket could not be read (HTTP ${res.status}).`);
      })
      .catch(() => live && setError("The bucket could not be read (no answer from this server)."));
    return () => {
      live = false;
    };
  }, []);

  if (error) return <Alert>{error}</Alert>;
  if (!data) return <p className="text-sm text-zinc-600 dark:text-zinc-400">Reading the bucket…</p>;
  if (data.snapshots.length === 0) {
    return (
      <p className="rounded-lg border border-dashed border-zinc-300 p-6 text-center text-sm text-zinc-600 dark:border-zinc-700 dark:text-zinc-400">
        No offsite snapshots in {data.location} yet. The next backup sends one.
      </p>
    );
  }
  return (
    <Table
      head={
        <>
          <th className="px-4 py-2 font-medium">Snapshot in {data.location}</th>
          <th className="hidden px-4 py-2 font-medium sm:table-cell">Size</th>
          <th className="hidden px-4 py-2 font-medium sm:table-cell">Documents</th>
          <th className="px-4 py-2">
            <span className="sr-only">Actions</span>
          </th>
        </>
      }
    >
      {data.snapshots.map((s) => (
        <tr key={s.name} data-testid="offsite-row">
          <td className="px-4 py-2">
            <span className="block font-medium">{formatDateTime(s.created_at)}</span>
            <span className="block break-all font-mono text-xs text-zinc-600 dark:text-zinc-400">{s.name}</span>
            <span className="block text-xs text-zinc-600 dark:text-zinc-400">
              {scopeLabel(s.scope)}
              {s.encrypted && (
                <>
                  {" · "}
                  <LockIcon /> encrypted
                </>
              )}
              {!s.verified && <span className="text-red-700 dark:text-red-400"> · incomplete or damaged</span>}
              <span className="sm:hidden">
                {" · "}
                {formatBytes(s.total_bytes)} · {s.documents === 1 ? "1 document" : `${s.documents ?? "?"} documents`}
              </span>
            </span>
          </td>
          <td className="hidden whitespace-nowrap px-4 py-2 tabular-nums sm:table-cell">{formatBytes(s.total_bytes)}</td>
          <td className="hidden px-4 py-2 tabular-nums sm:table-cell">{s.documents ?? "—"}</td>
          <td className="px-2 py-2 text-right sm:px-4">
            <div className="flex flex-col items-end gap-1 sm:flex-row sm:items-center sm:justify-end">
              <Button type="button" variant="secondary" disabled={!s.verified} busy={staging === s.name} busyLabel="Fetching…" onClick={() => onRestore(s)} aria-label={`Restore ${s.name}`}>
                Restore
              </Button>
              {s.verified && (
                <Link
                  href={`/settings/backup/snapshots/${encodeURIComponent(s.name)}`}
                  className="inline-block rounded-md px-3 py-2 text-sm font-medium text-emerald-700 hover:underline dark:text-emerald-400"
                  aria-label={`Documents in ${s.name}`}
                >
                  Documents
                </Link>
              )}
            </div>
          </td>
        </tr>
      ))}
    </Table>
  );
}
