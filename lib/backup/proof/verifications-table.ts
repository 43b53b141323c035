import type { DB } from "../../db/connection";

/** The verifications table (SQL only): the last re-check of each stored object, local and offsite. */

export type ProofTarget = "local" | "offsite";
export type ProofKind = "archive" | "snapshot" | "blob";

export interface ProofObject {
  target: ProofTarget;
  kind: ProofKind;
  /** The archive's name; an offsite object's path under the prefix (snapshots/… or blobs/…). */
  object: string;
  size: number;
}

export interface VerificationRow extends ProofObject {
  verified_at: string;
  /** 1 whole, 0 damaged or missing, null when no key Coffer holds opens it. */
  ok: 0 | 1 | null;
  error: string | null;
}

export function verificationRows(db: DB): VerificationRow[] {
  return db.prepare("SELECT target, object, kind, size, verified_at, ok, error FROM verifications ORDER BY target, object").all() as VerificationRow[];
}

/** Insert or replace the row for one object. */
export function saveVerification(db: DB, row: VerificationRow): VerificationRow {
  db.prepare(
    "INSERT INTO verifications (target, object, kind, size, verified_at, ok, error) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (target, object) DO UPDATE SET kind = excluded.kind, size = excluded.size, verified_at = excluded.verified_at, ok = excluded.ok, error = excluded.error",
  ).run(row.target, row.object, row.kind, row.size, row.verified_at, row.ok, row.error);
  return row;
}

/** The object is gone (retention, a manual delete): its row goes too. */
export function forgetVerification(db: DB, target: ProofTarget, object: string): void {
  db.prepare("DELETE FROM verifications WHERE target = ? AND object = ?").run(target, object);
}

/** Objects per target and result of their last check: counted by SQLite, not by loading every row (Health and metrics are polled). */
export function verificationCounts(db: DB): { target: ProofTarget; ok: 0 | 1 | null; n: number }[] {
  return db.prepare("SELECT target, ok, count(*) AS n FROM verifications GROUP BY target, ok ORDER BY target, ok").all() as { target: ProofTarget; ok: 0 | 1 | null; n: number }[];
}

/** Objects whose last check is older than `cutoff` (ISO time). */
export function overdueVerifications(db: DB, cutoff: string): number {
  return db.prepare("SELECT count(*) FROM verifications WHERE verified_at < ?").pluck().get(cutoff) as number;
}

export function damagedVerifications(db: DB): VerificationRow[] {
  return db.prepare("SELECT target, object, kind, size, verified_at, ok, error FROM verifications WHERE ok = 0 ORDER BY target, object").all() as VerificationRow[];
}
