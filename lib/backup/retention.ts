import { isArchiveName, archiveNameDate, archiveNameScope } from "./format/tables";
import type { BackupJob } from "../settings/schema";
import { DAY_MS } from "../util/time";

export type RetentionPolicy = BackupJob["retention"];

export interface RetentionFile {
  name: string;
  verified: boolean;
}

export interface RetentionPlan {
  keep: string[];
  prune: string[];
}

export const PRERESTORE_MIN_AGE_MS = 7 * DAY_MS;

type Dated = RetentionFile & { at: number };

/** Newest first; equal times by name, so the plan never depends on directory order. */
function newestFirst(a: Dated, b: Dated): number {
  return b.at - a.at || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
}

function bucketKeys(at: number): { hourly: string; daily: string; weekly: string; monthly: string } {
  const d = new Date(at);
  const iso = d.toISOString();
  // ISO week: the Thursday of this week decides the year.
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 3 - ((d.getUTCDay() + 6) % 7)));
  const week1 = new Date(Date.UTC(thursday.getUTCFullYear(), 0, 4));
  const week = 1 + Math.round((thursday.getTime() - week1.getTime()) / 86400000 / 7 - (3 - ((week1.getUTCDay() + 6) % 7)) / 7);
  return {
    hourly: iso.slice(0, 13),
    daily: iso.slice(0, 10),
    weekly: `${thursday.getUTCFullYear()}-W${week}`,
    monthly: iso.slice(0, 7),
  };
}

/**
 * Which archives to keep and which to prune, as a pure function of names,
 * verification and time. Only Coffer archive names are ever considered; the
 * newest verified backup is always kept; prerestore archives are kept at
 * least 7 days. GFS works like restic's --keep-*: for each of the last N
 * hours/days/weeks/months that have a backup (UTC), the newest one is kept.
 */
export function planRetention(files: RetentionFile[], policy: RetentionPolicy, now: Date): RetentionPlan {
  const dated: Dated[] = files
    .filter((f) => isArchiveName(f.name))
    .map((f) => ({ ...f, at: archiveNameDate(f.name)!.getTime() }))
    .sort(newestFirst);
  const keep = new Set<string>();

  const newestVerified = dated.find((f) => f.verified);
  if (newestVerified) keep.add(newestVerified.name);
  for (const f of dated) {
    if (archiveNameScope(f.name) === "prerestore" && now.getTime() - f.at < PRERESTORE_MIN_AGE_MS) keep.add(f.name);
  }

  if (policy.mode === "count") {
    for (const f of dated.slice(0, policy.count)) keep.add(f.name);
  } else if (policy.mode === "days") {
    const cutoff = now.getTime() - policy.days * DAY_MS;
    for (const f of dated) if (f.at >= cutoff) keep.add(f.name);
  } else {
    for (const f of dated.slice(0, policy.gfs.latest)) keep.add(f.name);
    for (const period of ["hourly", "daily", "weekly", "monthly"] as const) {
      const limit = policy.gfs[period];
      const seen = new Set<string>();
      for (const f of dated) {
        if (seen.size >= limit) break;
        const key = bucketKeys(f.at)[period];
        if (seen.has(key)) continue;
        seen.add(key);
        keep.add(f.name);
      }
    }
  }
  return {
    keep: dated.filter((f) => keep.has(f.name)).map((f) => f.name),
    prune: dated.filter((f) => !keep.has(f.name)).map((f) => f.name),
  };
}
