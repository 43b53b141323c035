"use client";

import { useState } from "react";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { Alert, Button, Table } from "@/components/ui";
import { formatBytes } from "@/lib/format";

export interface DocumentItem {
  id: number;
  name: string;
  size: number;
  contentType: string;
  createdAt: string;
  owner: string;
}

const failure = async (res: Response | null, what: string) => {
  const data = res ? await res.json().catch(() => null) : null;
  return data?.error?.message ?? (res ? `${what} failed (HTTP ${res.status}).` : "The connection to the server was lost.");
};

/** `trashDays`: how long the trash keeps a deleted document; 0 means a delete is for good. */
export function DocumentTable({ documents, showOwner, trashDays }: { documents: DocumentItem[]; showOwner: boolean; trashDays: number }) {
  const router = useRouter();
  const [deleting, setDeleting] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [trashed, setTrashed] = useState<DocumentItem | null>(null);
  const [undoing, setUndoing] = useState(false);

  async function remove(doc: DocumentItem) {
    // With a trash there is an undo, so no question first; without one, ask.
    if (trashDays === 0 && !window.confirm(`Delete “${doc.name}”? The trash is turned off, so this cannot be undone (except by restoring a backup).`)) return;
    setDeleting(doc.id);
    setError(null);
    setTrashed(null);
    const res = await fetch(`/api/documents/${doc.id}`, { method: "DELETE" }).catch(() => null);
    setDeleting(null);
    if (!res || !res.ok) setError(await failure(res, "Delete"));
    else if (res.headers.get("x-coffer-trashed") === "1") setTrashed(doc);
    router.refresh();
  }

  async function undo(doc: DocumentItem) {
    setUndoing(true);
    const res = await fetch(`/api/trash/${doc.id}/restore`, { method: "POST" }).catch(() => null);
    setUndoing(false);
    if (!res || !res.ok) setError(await failure(res, "Undo"));
    setTrashed(null);
    router.refresh();
  }

  const notice = (
    <>
      {error && <Alert>{error}</Alert>}
      {trashed && (
        <Alert tone="info">
          <span className="flex flex-wrap items-center gap-x-3 gap-y-1">
            <span>
              Moved “{trashed.name}” to the <Link href="/trash" className="font-medium underline">trash</Link>; it stays there {trashDays} day{trashDays === 1 ? "" : "s"}.
            </span>
            <Button variant="ghost" busy={undoing} onClick={() => undo(trashed)}>
              Undo
            </Button>
          </span>
        </Alert>
      )}
    </>
  );

  if (documents.length === 0) {
    return (
      <>
        {notice}
        <p className="py-10 text-center text-sm text-zinc-600 dark:text-zinc-400">No documents yet. Upload one above.</p>
      </>
    );
  }
  return (
    <>
      {notice}
      <Table
        head={
          <>
            <th className="px-4 py-2 font-medium">Name</th>
            <th className="hidden px-4 py-2 font-medium sm:table-cell">Size</th>
            <th className="hidden px-4 py-2 font-medium md:table-cell">Type</th>
            <th className="hidden px-4 py-2 font-medium sm:table-cell">Added</th>
            {showOwner && <th className="hidden px-4 py-2 font-medium sm:table-cell">Owner</th>}
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
                {formatBytes(d.size)} · {d.createdAt.slice(0, 10)}
                {showOwner ? ` · ${d.owner}` : ""}
              </span>
            </td>
            <td className="hidden whitespace-nowrap px-4 py-2 tabular-nums sm:table-cell">{formatBytes(d.size)}</td>
            <td className="hidden max-w-[10rem] truncate px-4 py-2 text-zinc-600 md:table-cell dark:text-zinc-400">{d.contentType.split(";")[0]}</td>
            <td className="hidden whitespace-nowrap px-4 py-2 text-zinc-600 sm:table-cell dark:text-zinc-400">
              <time dateTime={d.createdAt}>{d.createdAt.slice(0, 10)}</time>
            </td>
            {showOwner && <td className="hidden px-4 py-2 sm:table-cell">{d.owner}</td>}
            <td className="px-2 py-2 text-right sm:px-4">
              <div className="flex flex-col items-end sm:flex-row sm:items-center sm:justify-end">
              <a
                href={`/api/documents/${d.id}`}
                download={d.name}
                className="inline-block rounded-md px-3 py-2 text-sm font-medium text-emerald-700 hover:underline dark:text-emerald-400"
                aria-label={`Download ${d.name}`}
              >
                Download
              </a>
              <Button
                variant="ghost"
                className="text-red-700 dark:text-red-400"
                busy={deleting === d.id}
                onClick={() => remove(d)}
                aria-label={`Delete ${d.name}`}
              >
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
