"use client";

import { useConfirmedDelete } from "@/components/useConfirmedDelete";
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

export function DocumentTable({ documents, showOwner }: { documents: DocumentItem[]; showOwner: boolean }) {
  const { deleting, error, remove: removeRow } = useConfirmedDelete<number>();
  const remove = (doc: DocumentItem) =>
    removeRow(doc.id, `/api/documents/${doc.id}`, `Delete “${doc.name}”? This cannot be undone (except by restoring a backup).`);

  if (documents.length === 0) {
    return <p className="py-10 text-center text-sm text-zinc-600 dark:text-zinc-400">No documents yet. Upload one above.</p>;
  }
  return (
    <>
      {error && <Alert>{error}</Alert>}
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
