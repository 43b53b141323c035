"use client";

import { useState } from "react";
import { useRouter } from "next/navigation";
import { Alert, Button, Table } from "@/components/ui";
import { formatBytes } from "@/lib/format";

export interface TrashItem {
  id: number;
  name: string;
  size: number;
  owner: string;
  deletedAt: string;
  purgeAt: string;
}

/** Restore for everyone; delete forever and empty the trash for admins (the server checks both). */
export function TrashTable({ documents, admin }: { documents: TrashItem[]; admin: boolean }) {
  const router = useRouter();
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  async function act(key: string, url: string, method: "POST" | "DELETE", success: string, question?: string) {
    if (question && !window.confirm(question)) return;
    setBusy(key);
    setError(null);
    setDone(null);
    const res = await fetch(url, { method }).catch(() => null);
    setBusy(null);
    if (!res || !res.ok) {
      const data = res ? await res.json().catch(() => null) : null;
      setError(data?.error?.message ?? (res ? `That failed (HTTP ${res.status}).` : "The connection to the server was lost."));
    } else setDone(success);
    router.refresh();
  }

  return (
    <>
      {error && <Alert>{error}</Alert>}
      {done && <Alert tone="success">{done}</Alert>}
      {documents.length === 0 ? (
        <p className="py-10 text-center text-sm text-zinc-600 dark:text-zinc-400">The trash is empty.</p>
      ) : (
        <>
          {admin && (
            <div className="mb-3 flex justify-end">
              <Button
                variant="danger"
                busy={busy === "empty"}
                onClick={() =>
                  act("empty", "/api/trash", "DELETE", `Erased ${documents.length} document(s) for good.`, `Erase all ${documents.length} document(s) in the trash for good? Backups made before now still hold them.`)
                }
              >
                Empty trash
              </Button>
            </div>
          )}
          <Table
            head={
              <>
                <th className="px-4 py-2 font-medium">Name</th>
                <th className="hidden px-4 py-2 font-medium sm:table-cell">Size</th>
                <th className="hidden px-4 py-2 font-medium sm:table-cell">Deleted</th>
                <th className="hidden px-4 py-2 font-medium md:table-cell">Erased on</th>
                {admin && <th className="hidden px-4 py-2 font-medium sm:table-cell">Owner</th>}
                <th className="px-4 py-2">
                  <span className="sr-only">Actions</span>
                </th>
              </>
            }
          >
            {documents.map((d) => (
              <tr key={d.id}>
                <td className="max-w-[11rem] px-4 py-2 sm:max-w-xs" title={d.name}>
                  <span className="block truncate font-medium">{d.name}</span>
                  <span className="block text-xs text-zinc-600 sm:hidden dark:text-zinc-400">
                    {formatBytes(d.size)} · deleted {d.deletedAt.slice(0, 10)}
                    {admin ? ` · ${d.owner}` : ""}
                  </span>
                </td>
                <td className="hidden whitespace-nowrap px-4 py-2 tabular-nums sm:table-cell">{formatBytes(d.size)}</td>
                <td className="hidden whitespace-nowrap px-4 py-2 text-zinc-600 sm:table-cell dark:text-zinc-400">
                  <time dateTime={d.deletedAt}>{d.deletedAt.slice(0, 10)}</time>
                </td>
                <td className="hidden whitespace-nowrap px-4 py-2 text-zinc-600 md:table-cell dark:text-zinc-400">
                  <time dateTime={d.purgeAt}>{d.purgeAt.slice(0, 10)}</time>
                </td>
                {admin && <td className="hidden px-4 py-2 sm:table-cell">{d.owner}</td>}
                <td className="px-2 py-2 text-right sm:px-4">
                  <div className="flex flex-col items-end sm:flex-row sm:items-center sm:justify-end">
                    <Button variant="ghost" busy={busy === `r${d.id}`} onClick={() => act(`r${d.id}`, `/api/trash/${d.id}/restore`, "POST", `“${d.name}” is back in Documents.`)} aria-label={`Restore ${d.name}`}>
                      Restore
                    </Button>
                    {admin && (
                      <Button
                        variant="ghost"
                        className="text-red-700 dark:text-red-400"
                        busy={busy === `d${d.id}`}
                        onClick={() => act(`d${d.id}`, `/api/trash/${d.id}`, "DELETE", `“${d.name}” is erased.`, `Erase “${d.name}” for good? Backups made before now still hold it.`)}
                        aria-label={`Delete ${d.name} forever`}
                      >
                        Delete forever
                      </Button>
                    )}
                  </div>
                </td>
              </tr>
            ))}
          </Table>
        </>
      )}
    </>
  );
}
