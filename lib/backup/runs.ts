import type { DB } from "../db/connection";
import type { Scope, Trigger } from "./format";
import type { RunEncryption } from "./encryption";

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
}

export function startRun(db: DB, trigger: Trigger, scope: Scope): number {
  return Number(
    db.prepare("INSERT INTO backup_runs (trigger, scope, started_at, status) VALUES (?, ?, ?, 'running')").run(trigger, scope, new Date().toISOString()).lastInsertRowid,
  );
}

export function finishRun(
  db: DB,
  id: number,
  r: { status: "success" | "failed"; file?: string | null; bytes?: number | null; verified?: boolean; error?: string | null; sha256?: string | null; encryption?: RunEncryption },
): void {
  db.prepare("UPDATE backup_runs SET finished_at = ?, status = ?, file = ?, bytes = ?, verified = ?, error = ?, sha256 = ?, encryption = ? WHERE id = ?").run(
    new Date().toISOString(),
    r.status,
    r.file ?? null,
    r.bytes ?? null,
    r.verified ? 1 : 0,
    r.error ?? null,
    r.sha256 ?? null,
    r.encryption ? JSON.stringify(r.encryption) : null,
    id,
  );
}

/** How each stored file was encrypted, from the run that wrote it. */
export function fileEncryption(db: DB): Map<string, RunEncryption> {
  const rows = db.prepare("SELECT file, encryption FROM backup_runs WHERE file IS NOT NULL AND encryption IS NOT NULL").all() as { file: string; encryption: string }[];
  return new Map(rows.map((r) => [r.file, JSON.parse(r.encryption) as RunEncryption]));
}

export function recentRuns(db: DB, limit = 20): BackupRun[] {
  return db.prepare("SELECT * FROM backup_runs ORDER BY id DESC LIMIT ?").all(limit) as BackupRun[];
}

export function lastRun(db: DB): BackupRun | null {
  return (db.prepare("SELECT * FROM backup_runs WHERE status != 'running' ORDER BY id DESC LIMIT 1").get() as BackupRun | undefined) ?? null;
}

export function lastSuccess(db: DB): BackupRun | null {
  return (db.prepare("SELECT * FROM backup_runs WHERE status = 'success' ORDER BY id DESC LIMIT 1").get() as BackupRun | undefined) ?? null;
}

/** Verified flag per file name, from the runs that wrote them (a run that wrote a file that did not read back is false). */
export function verifiedFiles(db: DB): Map<string, boolean> {
  const rows = db.prepare("SELECT file, verified FROM backup_runs WHERE file IS NOT NULL ORDER BY id").all() as { file: string; verified: number }[];
  return new Map(rows.map((r) => [r.file, r.verified === 1]));
}
