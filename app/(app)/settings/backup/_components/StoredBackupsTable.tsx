"use client";

import Link from "next/link";
import { useConfirmedDelete } from "@/components/useConfirmedDelete";
import { Alert, Button, LockIcon, Table } from "@/components/ui";
import { formatBytes, formatDateTime } from "@/lib/format";
import type { StoredBackup } from "@/lib/backup/local/repository";
import { scopeLabel } from "@/lib/backup/format/tables";

export type StoredRow = StoredBackup;

export function StoredBackupsTable({ backups, onRestore, staging }: { backups: StoredRow[]; onRestore: (name: string) => void; staging: string | null }) {
  const { deleting, error, remove: removeRow } = useConfirmedDelete<string>();
  const remove = (name: string) =>
    removeRow(name, `/api/settings/backup/files/${encodeURIComponent(name)}`, `Delete the backup ${name}? It cannot be brought back.`);

  if (backups.length === 0) {
    return <p className="rounded-lg border border-dashed border-zinc-300 p-6 text-center text-sm text-zinc-600 dark:border-zinc-700 dark:text-zinc-400">No stored backups yet. Press Back up now.</p>;
  }
  return (
    <>
      {error && <Alert>{error}</Alert>}
      <Table
        head={
          <>
            <th className="px-4 py-2 font-medium">Backup</th>
            <th className="hidden px-4 py-2 font-medium sm:table-cell">Size</th>
            <th className="hidden px-4 py-2 font-medium md:table-cell">Scope</th>
            <th className="hidden px-4 py-2 font-medium md:table-cell">Trigger</th>
            <th className="hidden px-4 py-2 font-medium sm:table-cell">Verified</th>
            <th className="px-4 py-2"><span className="sr-only">Actions</span></th>
          </>
        }
      >
        {backups.map((b) => (
          <tr key={b.name} data-testid="backup-row">
            <td className="px-4 py-2">
              <span className="block font-medium">{formatDateTime(b.created_at)}</span>
              <span className="block break-all font-mono text-xs text-zinc-600 dark:text-zinc-400">{b.name}</span>
              {b.encryption && (
                <span className="block text-xs text-zinc-700 dark:text-zinc-300" data-testid="encrypted-for">
                  <LockIcon />{" "}
                  {b.encryption.mode === "recipients"
                    ? `encrypted for ${b.encryption.recipients.map((r) => `${r.slice(0, 12)}…${r.slice(-6)}`).join(", ")}`
                    : b.encryption.mode === "passphrase"
                      ? "encrypted with the passphrase"
                      : "encrypted (age)"}
                </span>
              )}
              <span className="block text-xs text-zinc-600 sm:hidden dark:text-zinc-400">
                {formatBytes(b.size)} · {scopeLabel(b.scope)} · {b.verified ? "verified" : "not verified"}
              </span>
            </td>
            <td className="hidden whitespace-nowrap px-4 py-2 tabular-nums sm:table-cell">{formatBytes(b.size)}</td>
            <td className="hidden px-4 py-2 md:table-cell">{scopeLabel(b.scope)}</td>
            <td className="hidden px-4 py-2 md:table-cell">{b.trigger ?? "—"}</td>
            <td className="hidden whitespace-nowrap px-4 py-2 sm:table-cell">
              {b.verified === true ? <span className="text-emerald-700 dark:text-emerald-400">✓ verified</span> : b.verified === false ? <span className="text-red-700 dark:text-red-400">failed</span> : <span className="text-zinc-500">not checked</span>}
            </td>
            <td className="px-2 py-2 text-right sm:px-4">
              <div className="flex flex-col items-end sm:flex-row sm:items-center sm:justify-end">
                <Button variant="ghost" busy={staging === b.name} busyLabel="Checking…" onClick={() => onRestore(b.name)} aria-label={`Restore ${b.name}`}>
                  Restore
                </Button>
                {b.scope !== "vault" && (
                  <Link
                    href={`/settings/backup/stored/${encodeURIComponent(b.name)}`}
                    className="inline-block rounded-md px-3 py-2 text-sm font-medium text-emerald-700 hover:underline dark:text-emerald-400"
                    aria-label={`Documents in ${b.name}`}
                  >
                    Documents
                  </Link>
                )}
                <a
                  href={`/api/settings/backup/files/${encodeURIComponent(b.name)}`}
                  download={b.name}
                  className="inline-block rounded-md px-3 py-2 text-sm font-medium text-emerald-700 hover:underline dark:text-emerald-400"
                  aria-label={`Download ${b.name}`}
                >
                  Download
                </a>
                <Button variant="ghost" className="text-red-700 dark:text-red-400" busy={deleting === b.name} onClick={() => remove(b.name)} aria-label={`Delete ${b.name}`}>
                  Delete
                </Button>
              </div>
            </td>
          </tr>
        ))}
      </Table>
    </>
  );
}
