import type { Instance } from "../../instance";
import { AppError } from "../../errors";
import { systemActor, audit, type Actor } from "../../audit/log";
import { acquireLock, type InstanceLock } from "../../lock";
import { packArchive, type PackedArchive } from "../format/writer";
import { archiveEncryption, type ArchiveEncryption } from "../format/encryption";
import type { BackupMeta, Scope, Trigger } from "../format/tables";
import type { DbSnapshot } from "../format/db-snapshot";
import { startRun, finishRun } from "../runs";
import { currentTarget, freeArchiveName } from "./repository";
import { proveStoredArchive } from "./prove";
import type { BackupTarget } from "./target";

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
  /** The archive's time (its name and meta); the job's clock. Default: now. */
  now?: Date;
  /** What the job resolved once (null: plain); default: from settings.yaml now. */
  encryption?: ArchiveEncryption | null;
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
    const encryption = opts.encryption === undefined ? archiveEncryption(inst) : opts.encryption;
    const now = opts.now ?? new Date();
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
          seekIndex: true,
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
        // Kept beside the archive: one document from it is then a seek, not a pass (restore/browse.ts).
        sidecar: () => packed.seekIndex,
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
    audit(inst.db, opts.actor ?? systemActor(opts.trigger === "schedule" ? "scheduler" : "system"), "backup.create", name, {
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
    throw new AppError(500, "BACKUP_FAILED", `The backup failed: ${message}`, undefined, { cause: err });
  } finally {
    if (!opts.lock) lock.release();
  }
}
