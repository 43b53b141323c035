import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../../instance";
import { AppError } from "../../errors";
import { systemActor, audit } from "../../audit/log";
import { acquireLock } from "../../lock";
import { startRun, finishRun, lastSuccess } from "../runs";
import { snapshotDatabase } from "../format/db-snapshot";
import type { OffsitePushResult } from "../offsite/push";
import type { OffsitePruneResult } from "../offsite/prune";
import { alert, type SendOptions } from "../alerts";
import type { RetentionPolicy } from "../retention";
import { collectNow } from "../../util/gc";
import { removeWorkDir } from "../workdir";
import { resolveJobConfig } from "./config";
import { writeStoredBackup, type StoredBackupOptions, type StoredBackupResult } from "../local/stored";

export interface JobResult {
  local: StoredBackupResult;
  /** The offsite part, when offsite is on: its result or what went wrong (the local archive stands either way). */
  offsite: { ok: true; result: OffsitePushResult; pruned: OffsitePruneResult | null } | { ok: false; error: AppError } | null;
}

/**
 * The backup job: the local archive and, when offsite is on, the offsite
 * snapshot, both from one consistent database snapshot. Each part is its own
 * row in the run history. An offsite failure does not fail the local part;
 * it is recorded, logged and sent to the webhook. `pruneOffsiteWith` applies
 * remote retention after a successful offsite part (never after a failed one).
 */
export async function runBackupJob(
  inst: Instance,
  opts: StoredBackupOptions & { pruneOffsiteWith?: RetentionPolicy; log?: (line: string) => void; alertOptions?: SendOptions },
): Promise<JobResult> {
  const lock = opts.lock ?? (await acquireLock(inst.paths.root, `backup (${opts.trigger})`));
  try {
    const job = resolveJobConfig(inst, { scope: opts.scope, target: opts.target, now: opts.now });
    const loc = job.offsite;
    const part = { ...opts, lock, target: job.target, now: job.now, encryption: job.encryption };
    if (!loc) return { local: await writeStoredBackup(inst, part), offsite: null };
    const workDir = fs.mkdtempSync(path.join(inst.paths.tmp, "job-"));
    try {
      const dbSnapshot = await snapshotDatabase(inst, workDir);
      const local = await writeStoredBackup(inst, { ...part, dbSnapshot });
      collectNow();
      const runId = startRun(inst.db, opts.trigger, opts.scope, "offsite");
      try {
        if (loc instanceof AppError) throw loc;
        // Loaded here, not at start-up: the AWS SDK costs every process about 25 MiB and 200 ms, offsite or not.
        const { closeRepository, openRepository } = await import("../offsite/repository");
        const { pruneOffsite } = await import("../offsite/prune");
        const { pushOffsite } = await import("../offsite/push");
        const { continuousBlobObjects } = await import("../../continuous/offsite");
        const repo = openRepository(loc);
        try {
          const result = await pushOffsite(inst, repo, {
            scope: opts.scope,
            trigger: opts.trigger,
            dbSnapshot,
            name: local.name,
            now: new Date(local.meta.created_at),
            stillHeld: () => lock.held(),
            encryption: job.encryption,
          });
          finishRun(inst.db, runId, {
            status: "success",
            file: result.snapshot,
            bytes: result.bytesUploaded,
            verified: true,
            detail: { location: result.location, blobs_uploaded: result.blobsUploaded, blobs_skipped: result.blobsSkipped, snapshot_bytes: result.snapshotBytes },
          });
          audit(inst.db, opts.actor ?? systemActor(opts.trigger === "schedule" ? "scheduler" : "system"), "backup.offsite", result.snapshot, {
            location: result.location,
            uploaded: result.blobsUploaded,
            skipped: result.blobsSkipped,
            bytes: result.bytesUploaded,
          });
          let pruned: OffsitePruneResult | null = null;
          if (opts.pruneOffsiteWith) {
            try {
              pruned = await pruneOffsite(repo, opts.pruneOffsiteWith, job.now, undefined, continuousBlobObjects(inst));
              if (pruned.snapshots.length || pruned.blobs) opts.log?.(`offsite retention removed ${pruned.snapshots.length} snapshot(s) and ${pruned.blobs} unused document file(s)`);
            } catch (err) {
              opts.log?.(`offsite retention failed: ${(err as Error).message}`);
            }
          }
          return { local, offsite: { ok: true, result, pruned } };
        } finally {
          closeRepository(repo);
        }
      } catch (err) {
        const error = err instanceof AppError ? err : new AppError(502, "OFFSITE_FAILED", `The offsite copy failed: ${(err as Error).message}`, undefined, { cause: err });
        finishRun(inst.db, runId, { status: "failed", error: `Offsite: ${error.message}` });
        opts.log?.(`offsite copy failed: ${error.message}`);
        await alert(inst, "offsite.failed", error.message, lastSuccess(inst.db, "offsite")?.finished_at ?? null, opts.alertOptions);
        return { local, offsite: { ok: false, error } };
      }
    } finally {
      await removeWorkDir(workDir);
    }
  } finally {
    if (!opts.lock) lock.release();
  }
}
