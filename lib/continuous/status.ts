import fs from "node:fs";
import type { Instance } from "../instance";
import { continuousPlan, litestreamBinary, replicaWindow } from "./litestream";

/** Health degrades when the newest restorable second is this far behind a database that has changed since. */
export const LAG_THRESHOLD_S = 5 * 60;

export interface ContinuousLocation {
  location: "local";
  enabled: boolean;
  /**
   * 0 when the replica holds every change; otherwise the seconds since its
   * newest restorable second (what a loss right now would take). Null when
   * off or when there is no replica yet.
   */
  lag_seconds: number | null;
  first_restorable_at: string | null;
  last_restorable_at: string | null;
  /** Why it does not protect now (no binary, a bad backup directory), or null. */
  problem: string | null;
}

function mtimeMs(file: string): number | null {
  return fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? null;
}

/**
 * Continuous protection per location, read from the replica on disk
 * (lib/continuous/litestream.ts replicaWindow) and the database's WAL: the
 * replica is behind when the WAL changed after the replica's newest file
 * (a second of slack for Litestream's 1 s sync).
 */
export function continuousStatus(inst: Instance, now = Date.now()): ContinuousLocation[] {
  let plan;
  try {
    plan = continuousPlan(inst);
  } catch (err) {
    return [{ location: "local", enabled: true, lag_seconds: null, first_restorable_at: null, last_restorable_at: null, problem: (err as Error).message }];
  }
  const w = replicaWindow(plan.replica);
  const changed = mtimeMs(`${inst.paths.db}-wal`) ?? mtimeMs(inst.paths.db) ?? 0;
  const behind = !!w.last && changed > w.last.getTime() + 2000;
  const lag = !plan.enabled || !w.last ? null : behind ? Math.max(0, Math.round((now - w.last.getTime()) / 1000)) : 0;
  const problem = plan.enabled && !litestreamBinary() ? "The Litestream binary is missing (install @flydotio/litestream-linux-x64 or set COFFER_LITESTREAM)." : null;
  return [
    {
      location: "local",
      enabled: plan.enabled,
      lag_seconds: lag,
      first_restorable_at: w.first?.toISOString() ?? null,
      last_restorable_at: w.last?.toISOString() ?? null,
      problem,
    },
  ];
}
