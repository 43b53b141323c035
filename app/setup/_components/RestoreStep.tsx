"use client";

import { useState } from "react";
import { Button, Card } from "@/components/ui";
import { RestoreFlow } from "@/components/restore/RestoreFlow";
import { OffsiteRestore } from "./OffsiteRestore";

/** Restore from backup: a file uploaded here, or a snapshot read straight from a bucket. */
export function RestoreStep({ token, onBack }: { token: string; onBack: () => void }) {
  const [restoreFrom, setRestoreFrom] = useState<"file" | "s3">("file");
  return (
    <Card className="space-y-4">
      <div className="flex items-center justify-between gap-2">
        <h2 className="font-semibold">Restore from backup</h2>
        <Button variant="ghost" onClick={onBack}>
          Back
        </Button>
      </div>
      <div role="tablist" aria-label="Where the backup is" className="grid grid-cols-2 gap-1 rounded-lg bg-zinc-100 p-1 text-sm dark:bg-zinc-800">
        {(
          [
            ["file", "From a backup file"],
            ["s3", "From S3-compatible storage"],
          ] as const
        ).map(([k, label]) => (
          <button
            key={k}
            type="button"
            role="tab"
            aria-selected={restoreFrom === k}
            onClick={() => setRestoreFrom(k)}
            className={
              restoreFrom === k
                ? "rounded-md bg-white px-3 py-1.5 font-medium shadow-sm dark:bg-zinc-900"
                : "rounded-md px-3 py-1.5 text-zinc-600 hover:text-zinc-900 dark:text-zinc-400 dark:hover:text-zinc-100"
            }
          >
            {label}
          </button>
        ))}
      </div>
      {restoreFrom === "file" ? (
        <>
          <p className="text-sm text-zinc-600 dark:text-zinc-400">Upload a backup of your old instance. Coffer checks every file in it before anything changes.</p>
          <RestoreFlow mode={{ kind: "setup", token }} />
        </>
      ) : (
        <>
          <p className="text-sm text-zinc-600 dark:text-zinc-400">
            Your old server sent its backups to a bucket. Enter the bucket&apos;s address and keys: they are used only to read it now. After the restore, this server has the old one&apos;s offsite settings.
          </p>
          <OffsiteRestore token={token} />
        </>
      )}
    </Card>
  );
}
