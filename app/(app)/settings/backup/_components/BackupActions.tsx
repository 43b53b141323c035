"use client";

import { useState } from "react";
import { useRouter } from "next/navigation";
import { Alert, Button, Card } from "@/components/ui";
import { formatBytes } from "@/lib/format";

export function BackupActions({ defaultScope, directory, offsite = null }: { defaultScope: string; directory: string | null; offsite?: string | null }) {
  const router = useRouter();
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<{ tone: "success" | "error"; text: string } | null>(null);

  async function backupNow() {
    setRunning(true);
    setResult(null);
    const res = await fetch("/api/settings/backup/run", { method: "POST" });
    const data = await res.json().catch(() => null);
    setRunning(false);
    if (res.ok) {
      const off = data.offsite as null | { ok: true; uploaded: number; bytes: number } | { ok: false; error: string };
      const offText = !off ? "" : off.ok ? ` Offsite: ${off.uploaded} new document file(s), ${formatBytes(off.bytes)} sent.` : ` The offsite copy failed: ${off.error}`;
      setResult({ tone: off && !off.ok ? "error" : "success", text: `Saved ${data.name} (${formatBytes(data.bytes)})${data.verified ? ", verified" : ""}.${offText}` });
    } else {
      setResult({ tone: "error", text: data?.error?.message ?? `The backup failed (HTTP ${res.status}).` });
    }
    router.refresh();
  }

  return (
    <div className="grid gap-4 md:grid-cols-2">
      <Card className="space-y-3">
        <h2 className="font-semibold">Download a backup</h2>
        <p className="text-sm text-zinc-600 dark:text-zinc-400">
          Made fresh and streamed straight to your browser; nothing is kept on the server.
        </p>
        <div className="flex flex-wrap gap-2">
          <a
            href="/api/backup/download?scope=full"
            className="inline-flex items-center rounded-md bg-emerald-700 px-3.5 py-2 text-sm font-medium text-white hover:bg-emerald-800 dark:bg-emerald-600"
          >
            Download full backup
          </a>
          <a
            href="/api/backup/download?scope=db"
            className="inline-flex items-center rounded-md border border-zinc-300 px-3.5 py-2 text-sm font-medium hover:bg-zinc-100 dark:border-zinc-700 dark:hover:bg-zinc-800"
          >
            Database only
          </a>
        </div>
        <p className="text-xs text-zinc-600 dark:text-zinc-400">
          Full: database, settings, keys and documents. Database only: everything but the documents&apos; contents.
        </p>
      </Card>
      <Card className="space-y-3">
        <h2 className="font-semibold">Back up now</h2>
        <p className="text-sm text-zinc-600 dark:text-zinc-400">
          Writes a <strong>{defaultScope}</strong> backup into{" "}
          <code className="break-all text-xs">{directory ?? "the backup directory"}</code>, then reads it back to verify it
          {offsite ? (
            <>
              , and sends it to <code className="break-all text-xs">{offsite}</code>
            </>
          ) : null}
          .
        </p>
        <Button onClick={backupNow} busy={running} busyLabel="Backing up…" disabled={!directory}>
          Back up now
        </Button>
        {result && <Alert tone={result.tone}>{result.text}</Alert>}
      </Card>
    </div>
  );
}
