import type { DB } from "../db/connection";
import type { Scope, Trigger } from "./format/tables";
import type { RunEncryption } from "./format/encryption";

export interface BackupRun {
  id: number;
  trigger: Trigger;
  scope: Scope;
  started_at: string;
  finished_at: string | null;
  status: "running" | "success" | "failed";
  file: string | null;
  bytes: number | null;
  verified: number;
  error: string | null;
  sha256: string | null;
  encryption: string | null;
  /** local: an archive in the backup directory; offsite: a snapshot in the S3 repository. */
  target: RunTarget;
  /** JSON: what an offsite run sent (blobs uploaded and skipped, bytes). */
  detail: string | null;
}

/** local: an archive written; offsite: a snapshot sent; verify: a stored object that failed rolling verification. */
export type RunTarget = "local" | "offsite" | "verify";

export function startRun(db: DB, trigger: Trigger, scope: Scope, target: RunTarget = "local"): number {
  return Number(
    db
      .prepare("INSERT INTO backup_runs (trigger, scope, started_at, status, target) VALUES (?, ?, ?, 'running', ?)")
      .run(trigger, scope, new Date().toISOString(), target).lastInsertRowid,
  );
}

export function finishRun(
  db: DB,
  id: number,
  r: {
    status: "success" | "failed";
    file?: string | null;
    bytes?: number | null;
    verified?: boolean;
    error?: string | null;
    sha256?: string | null;
    encryption?: RunEncryption;
    detail?: Record<string, unknown>;
  },
): void {
  db.prepare("UPDATE backup_runs SET finished_at = ?, status = ?, file = ?, bytes = ?, verified = ?, error = ?, sha256 = ?, encryption = ?, detail = ? WHERE id = ?").run(
    new Date().toISOString(),
    r.status,
    r.file ?? null,
    r.bytes ?? null,
    r.verified ? 1 : 0,
    r.error ?? null,
    r.sha256 ?? null,
    r.encryption ? JSON.stringify(r.encryption) : null,
    r.detail ? JSON.stringify(r.detail) : null,
    id,
  );
}

/** How each stored file was encrypted, from the run that wrote it. */
export function fileEncryption(db: DB): Map<string, RunEncryption> {
  const rows = db.prepare("SELECT file, encryption FROM backup_runs WHERE target = 'local' AND file IS NOT NULL AND encryption IS NOT NULL").all() as { file: string; encryption: string }[];
  return new Map(rows.map((r) => [r.file, JSON.parse(r.encryption) as RunEncryption]));
}

export function recentRuns(db: DB, limit = 20): BackupRun[] {
  return db.prepare("SELECT * FROM backup_runs ORDER BY id DESC LIMIT ?").all(limit) as BackupRun[];
}

export function lastRun(db: DB, target: RunTarget = "local"): BackupRun | null {
  return (db.prepare("SELECT * FROM backup_runs WHERE status != 'running' AND target = ? ORDER BY id DESC LIMIT 1").get(target) as BackupRun | undefined) ?? null;
}

export function lastSuccess(db: DB, target: RunTarget = "local"): BackupRun | null {
  return (db.prepare("SELECT * FROM backup_runs WHERE status = 'success' AND target = ? ORDER BY id DESC LIMIT 1").get(target) as BackupRun | undefined) ?? null;
}

/** Verified flag per file name, from the runs that wrote them (a run that wrote a file that did not read back is false). */
export function verifiedFiles(db: DB): Map<string, boolean> {
  const rows = db.prepare("SELECT file, verified FROM backup_runs WHERE target = 'local' AND file IS NOT NULL ORDER BY id").all() as { file: string; verified: number }[];
  return new Map(rows.map((r) => [r.file, r.verified === 1]));
}

/** The first successful run for a target: when protection began, for a drill that never ran. */
export function firstSuccess(db: DB, target: RunTarget = "local"): BackupRun | null {
  return (db.prepare("SELECT * FROM backup_runs WHERE status = 'success' AND target = ? ORDER BY id LIMIT 1").get(target) as BackupRun | undefined) ?? null;
}

/** The SHA-256 each stored archive had when it was written (from the run that wrote it). */
export function writtenHashes(db: DB): Map<string, string> {
  const rows = db.prepare("SELECT file, sha256 FROM backup_runs WHERE target = 'local' AND status = 'success' AND file IS NOT NULL AND sha256 IS NOT NULL ORDER BY id").all() as { file: string; sha256: string }[];
  return new Map(rows.map((r) => [r.file, r.sha256]));
}

/** Finished runs counted by target and outcome (metrics). */
export function runOutcomes(db: DB): { target: string; status: string; n: number }[] {
  return db.prepare("SELECT target, status, count(*) AS n FROM backup_runs WHERE status != 'running' GROUP BY target, status ORDER BY target, status").all() as { target: string; status: string; n: number }[];
}

/** Runs a stopped process left 'running' are failed, with why (start-up). */
export function failInterruptedRuns(db: DB, at: Date = new Date()): number {
  return db.prepare("UPDATE backup_runs SET status = 'failed', finished_at = ?, error = 'Coffer stopped while this backup was running' WHERE status = 'running'").run(at.toISOString()).changes;
}
