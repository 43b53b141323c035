import type { DB } from "../../db/connection";

/** The drills table (SQL only): one row per restore drill, from start to outcome. */

export type DrillStatus = "running" | "success" | "failed" | "skipped";

export interface Drill {
  id: number;
  trigger: "schedule" | "manual" | "cli";
  started_at: string;
  finished_at: string | null;
  status: DrillStatus;
  source: "local" | "offsite" | null;
  archive: string | null;
  /** Recovery time: staging and applying the backup until the instance opens (seconds). */
  seconds: number | null;
  /** JSON: timings of each step and what was compared. */
  detail: string | null;
  error: string | null;
}

export interface DrillDetail {
  stage_s: number;
  apply_s: number;
  check_s: number;
  total_s: number;
  documents: number;
  accounts: number;
  document_files: number;
  schema_version: number;
  /** The drill's restore of a minute ago from the continuous replica, when continuous protection is on. */
  continuous?: { at: string; seconds?: number; documents?: number; skipped?: string };
}

export type DrillOutcome = Partial<Drill> & { status: DrillStatus };

export function recentDrills(db: DB, limit = 10): Drill[] {
  return db.prepare("SELECT * FROM drills ORDER BY id DESC LIMIT ?").all(limit) as Drill[];
}

export function lastDrill(db: DB, status?: DrillStatus): Drill | null {
  const row = status
    ? db.prepare("SELECT * FROM drills WHERE status = ? ORDER BY id DESC LIMIT 1").get(status)
    : db.prepare("SELECT * FROM drills WHERE status != 'running' ORDER BY id DESC LIMIT 1").get();
  return (row as Drill | undefined) ?? null;
}

export function startDrill(db: DB, trigger: Drill["trigger"], at: Date = new Date()): number {
  return Number(db.prepare("INSERT INTO drills (trigger, started_at, status) VALUES (?, ?, 'running')").run(trigger, at.toISOString()).lastInsertRowid);
}

export function finishDrill(db: DB, id: number, r: DrillOutcome, at: Date = new Date()): Drill {
  db.prepare("UPDATE drills SET finished_at = ?, status = ?, source = ?, archive = ?, seconds = ?, detail = ?, error = ? WHERE id = ?").run(
    at.toISOString(),
    r.status,
    r.source ?? null,
    r.archive ?? null,
    r.seconds ?? null,
    r.detail ?? null,
    r.error ?? null,
    id,
  );
  return db.prepare("SELECT * FROM drills WHERE id = ?").get(id) as Drill;
}

/** Finished drills counted by outcome (metrics). */
export function drillOutcomes(db: DB): { status: string; n: number }[] {
  return db.prepare("SELECT status, count(*) AS n FROM drills WHERE status != 'running' GROUP BY status ORDER BY status").all() as { status: string; n: number }[];
}
