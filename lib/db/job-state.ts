import { getMeta, setMeta, type DB } from "./connection";

/**
 * What jobs remember between runs, in the meta table: every key Coffer
 * keeps there, with its type. Times in milliseconds are numbers; marks and
 * names are text; an empty value reads as none. Only this module spells the
 * keys, so a misspelt one does not compile.
 */
export type MsKey =
  /** When the schedule was switched on (slots before it were never promised). */
  | "schedule_enabled_at"
  | "schedule_last_attempt"
  /** The last schedule slot a run claimed. */
  | "schedule_last_slot"
  | "deep_check_due_from";

export type TextKey =
  /** The schedule the slots were counted for (a changed schedule starts from now). */
  | "schedule_job"
  /** Alert episodes already sent, so each is sent once. */
  | "stale_alert_for"
  | "drill_overdue_alert_for"
  | "instance_name"
  | "last_restore_id"
  | "restored_from"
  | "session_epoch"
  /** ISO times. */
  | "setup_completed_at"
  | "verify_last_slice_at"
  /** The doctor's last reports, as JSON. */
  | "doctor_last_deep"
  | "doctor_last_quick";

export function readMs(db: DB, key: MsKey): number | null {
  const raw = getMeta(db, key);
  if (!raw) return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

export function writeMs(db: DB, key: MsKey, value: number | null): void {
  setMeta(db, key, value === null ? "" : String(value));
}

export function readText(db: DB, key: TextKey): string | null {
  return getMeta(db, key) || null;
}

export function writeText(db: DB, key: TextKey, value: string | null): void {
  setMeta(db, key, value ?? "");
}
