import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../instance";
import { continuousPlan, litestreamBinary, replicaWindow } from "./litestream";
import { offsiteContinuousWanted, readOffsiteState } from "./offsite-state";

/** Health degrades when the newest restorable second is this far behind a database that has changed since. */
export const LAG_THRESHOLD_S = 5 * 60;

export interface ContinuousLocation {
  location: "local" | "offsite";
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
  /** The disk the replica is on is full (disk_full says how full): changes are not kept while it is. */
  disk_full: string | null;
}

/** What "full" means for the replica's disk: less free than this share of it, and never more than 64 MiB. */
const FULL_SHARE = 0.02;
const FULL_BYTES = 64 * 1024 * 1024;

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0)} MiB`;

/**
 * Whether the disk holding `dir` (or its nearest existing parent) is full, as a sentence for the person
 * who has to free it, or null. Litestream writes a snapshot and WAL segments there; on a full disk it
 * cannot, so the window stops growing while the app goes on serving.
 */
export function replicaDiskFull(dir: string): string | null {
  let at = path.resolve(dir);
  while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  let st;
  try {
    st = fs.statfsSync(at);
  } catch {
    return null;
  }
  const free = st.bavail * st.bsize;
  const size = st.blocks * st.bsize;
  if (free >= Math.min(FULL_BYTES, size * FULL_SHARE)) return null;
  return `The disk holding the continuous replica (${dir}) is full: ${mib(free)} free of ${mib(size)}. New changes are not being kept until there is room; free space on that disk or move the backup directory.`;
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
    return [{ location: "local", enabled: true, lag_seconds: null, first_restorable_at: null, last_restorable_at: null, problem: (err as Error).message, disk_full: null }];
  }
  const w = replicaWindow(plan.replica);
  const changed = mtimeMs(`${inst.paths.db}-wal`) ?? mtimeMs(inst.paths.db) ?? 0;
  const behind = !!w.last && changed > w.last.getTime() + 2000;
  const lag = !plan.enabled || !w.last ? null : behind ? Math.max(0, Math.round((now - w.last.getTime()) / 1000)) : 0;
  const problem = plan.enabled && !litestreamBinary() ? "The Litestream binary is missing (install @flydotio/litestream-linux-x64 or set COFFER_LITESTREAM)." : null;
  const local: ContinuousLocation = {
      location: "local",
      enabled: plan.enabled,
      lag_seconds: lag,
      first_restorable_at: w.first?.toISOString() ?? null,
      last_restorable_at: w.last?.toISOString() ?? null,
      problem,
      disk_full: plan.enabled ? replicaDiskFull(plan.replica) : null,
  };
  return plan.enabled ? [local, ...offsiteStatus(inst, local, w.lastMs, now)] : [local];
}

const clock = (iso: string) => `${iso.slice(11, 19)} UTC`;

/**
 * The bucket's copy (./offsite.ts), from what its last round recorded: it is
 * behind when the local replica holds a second the bucket does not; lag is
 * then what losing the disk now would take.
 */
function offsiteStatus(inst: Instance, local: ContinuousLocation, localLast: number | null, now: number): ContinuousLocation[] {
  let wanted;
  try {
    wanted = offsiteContinuousWanted(inst);
  } catch {
    wanted = null;
  }
  if (!wanted) return [];
  const st = readOffsiteState(inst);
  const last = st?.last_restorable_at ? Date.parse(st.last_restorable_at) : null;
  const behind = last !== null && localLast !== null && localLast > last;
  const lag = last === null ? null : behind ? Math.max(0, Math.round((now - last) / 1000)) : local.lag_seconds;
  const problem = st?.error
    ? `Changes could not be sent to ${st.location} since ${clock(st.failing_since ?? new Date(now).toISOString())} (${st.error.replace(/\.$/, "")}); ${lag ? `${lag} seconds of changes wait` : "they wait"} in the local replica and are sent when it answers.`
    : null;
  return [{ location: "offsite", enabled: true, lag_seconds: lag, first_restorable_at: st?.first_restorable_at ?? null, last_restorable_at: st?.last_restorable_at ?? null, problem, disk_full: null }];
}
