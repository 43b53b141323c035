import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../instance";
import { AppError } from "../errors";
import { audit, type Actor } from "../audit/log";
import { acquireLock, type InstanceLock } from "../lock";
import { packArchive, type PackedArchive } from "./archive";
import { archiveEncryption } from "./encryption";
import { proveStoredArchive } from "./verify";
import { startRun, finishRun, lastSuccess } from "./runs";
import { currentTarget, freeArchiveName } from "./repository";
import type { BackupTarget } from "./target";
import { scopeHasInstance, type BackupMeta, type Scope, type Trigger } from "./format";
import { snapshotDatabase, type DbSnapshot } from "./snapshot";
import type { OffsitePushResult } from "./offsite/push";
import type { OffsitePruneResult } from "./offsite/prune";
import { offsiteLocation } from "./offsite/location";
import { alert, type SendOptions } from "./alerts";
import type { RetentionPolicy } from "./retention";
import { collectNow } from "../util/gc";
import { removeWorkDir } from "./workdir";

export interface StoredBackupResult {
  runId: number;
  name: string;
  bytes: number;
  meta: BackupMeta;
  /** Always true: an archive that does not read back whole fails the run. */
  verified: true;
  target: BackupTarget;
  /** Milliseconds spent writing the archive and reading it back. */
  timings: { writeMs: number; verifyMs: number };
}

export interface StoredBackupOptions {
  scope: Scope;
  trigger: Trigger;
  actor?: Actor;
  /** Default: the configured backup directory. */
  target?: BackupTarget;
  /** A lock the caller already holds (the scheduler, a restore's prerestore); otherwise one is taken. */
  lock?: InstanceLock;
  onProgress?: (done: number, total: number) => void;
  /** A database snapshot the caller took (a job whose offsite part uses the same point in time). */
  dbSnapshot?: DbSnapshot;
}

/** How often a long write checks that it still holds the lock. */
const LOCK_CHECK_MS = 5_000;

/**
 * Write an archive into a target (the object appears only when complete),
 * then read it back through the reader and verify every member. Under the
 * instance lock; recorded in backup_runs; audited.
 */
export async function writeStoredBackup(inst: Instance, opts: StoredBackupOptions): Promise<StoredBackupResult> {
  const lock = opts.lock ?? (await acquireLock(inst.paths.root, `backup (${opts.trigger})`));
  const runId = startRun(inst.db, opts.trigger, opts.scope);
  try {
    const target = opts.target ?? currentTarget(inst);
    const encryption = archiveEncryption(inst);
    const now = new Date();
    const name = await freeArchiveName(target, opts.scope, now, !!encryption);
    const abort = new AbortController();
    let lastCheck = Date.now();
    const lockLost = () => new Error("the instance lock was lost to another process; this run is abandoned");
    const t0 = performance.now();
    let packed!: PackedArchive;
    const obj = await target.put(
      name,
      async (out) => {
        packed = await packArchive(inst, out, {
          scope: opts.scope,
          trigger: opts.trigger,
          now,
          signal: abort.signal,
          encryptTo: encryption?.to,
          dbSnapshot: opts.dbSnapshot,
          onProgress: (done, total) => {
            opts.onProgress?.(done, total);
            if (Date.now() - lastCheck > LOCK_CHECK_MS) {
              lastCheck = Date.now();
              if (!lock.held()) abort.abort(lockLost());
            }
          },
        });
      },
      {
        // Another process may have taken over a stale lock: never finalize then.
        beforeCommit: () => {
          if (!lock.held()) throw lockLost();
        },
      },
    );
    const t1 = performance.now();
    const problem = await proveStoredArchive(target, name, { sha256: packed.sha256, created_at: packed.meta.created_at }, encryption?.to);
    const timings = { writeMs: Math.round(t1 - t0), verifyMs: Math.round(performance.now() - t1) };
    const record = { file: name, bytes: obj.size, sha256: packed.sha256, encryption: encryption?.record ?? null };
    if (problem) {
      finishRun(inst.db, runId, { status: "failed", ...record, verified: false, error: `${name} was written but did not verify: ${problem}` });
      throw new AppError(500, "BACKUP_NOT_VERIFIED", `The backup ${name} was written but reading it back failed (${problem}). Check the disk of the backup directory.`);
    }
    finishRun(inst.db, runId, { status: "success", ...record, verified: true });
    audit(inst.db, opts.actor ?? { id: null, name: opts.trigger === "schedule" ? "scheduler" : "system" }, "backup.create", name, {
      scope: opts.scope,
      trigger: opts.trigger,
      bytes: obj.size,
      encrypted: !!encryption,
    });
    return { runId, name, bytes: obj.size, meta: packed.meta, verified: true, target, timings };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (!(err instanceof AppError && err.code === "BACKUP_NOT_VERIFIED")) finishRun(inst.db, runId, { status: "failed", error: message });
    if (err instanceof AppError) throw err;
    throw new AppError(500, "BACKUP_FAILED", `The backup failed: ${message}`);
  } finally {
    if (!opts.lock) lock.release();
  }
}

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
    let loc;
    try {
      loc = scopeHasInstance(opts.scope) ? offsiteLocation(inst) : null;
    } catch (err) {
      loc = err as AppError;
    }
    if (!loc) return { local: await writeStoredBackup(inst, { ...opts, lock }), offsite: null };
    const workDir = fs.mkdtempSync(path.join(inst.paths.tmp, "job-"));
    try {
      const dbSnapshot = await snapshotDatabase(inst, workDir);
      const local = await writeStoredBackup(inst, { ...opts, lock, dbSnapshot });
      collectNow();
      const runId = startRun(inst.db, opts.trigger, opts.scope, "offsite");
      try {
        if (loc instanceof AppError) throw loc;
        // Loaded here, not at start-up: the AWS SDK costs every process about 25 MiB and 200 ms, offsite or not.
        const { closeRepository, openRepository } = await import("./offsite/repository");
        const { pruneOffsite } = await import("./offsite/prune");
        const { pushOffsite } = await import("./offsite/push");
        const repo = openRepository(loc);
        try {
          const result = await pushOffsite(inst, repo, {
            scope: opts.scope,
            trigger: opts.trigger,
            dbSnapshot,
            name: local.name,
            now: new Date(local.meta.created_at),
            stillHeld: () => lock.held(),
          });
          finishRun(inst.db, runId, {
            status: "success",
            file: result.snapshot,
            bytes: result.bytesUploaded,
            verified: true,
            detail: { location: result.location, blobs_uploaded: result.blobsUploaded, blobs_skipped: result.blobsSkipped, snapshot_bytes: result.snapshotBytes },
          });
          audit(inst.db, opts.actor ?? { id: null, name: opts.trigger === "schedule" ? "scheduler" : "system" }, "backup.offsite", result.snapshot, {
            location: result.location,
            uploaded: result.blobsUploaded,
            skipped: result.blobsSkipped,
            bytes: result.bytesUploaded,
          });
          let pruned: OffsitePruneResult | null = null;
          if (opts.pruneOffsiteWith) {
            try {
              pruned = await pruneOffsite(repo, opts.pruneOffsiteWith, new Date());
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
        const error = err instanceof AppError ? err : new AppError(502, "OFFSITE_FAILED", `The offsite copy failed: ${(err as Error).message}`);
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
