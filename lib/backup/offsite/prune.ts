import { isArchiveName } from "../format/tables";
import { planRetention, type RetentionPolicy } from "../retention";
import type { TargetObject } from "../local/target";
import { readIndex, type OffsiteRepo, type SnapshotIndex } from "./repository";
import { eachLimit } from "../../util/concurrency";
import { DAY_MS } from "../../util/time";

/** How long an unreferenced blob or a snapshot-less index is kept: a run in progress elsewhere may be about to name it. */
export const DEFAULT_GRACE_MS = DAY_MS;

/** What remote retention looks at: the repository's listings and the indexes it read. */
export interface OffsiteListing {
  snapshots: TargetObject[];
  /** The index of each listed snapshot; null when it is missing or unreadable. */
  indexes: Map<string, SnapshotIndex | null>;
  indexObjects: TargetObject[];
  /** Indexes younger than the grace period whose snapshot is not listed (a run in progress), by snapshot name. */
  recentOrphans: Map<string, SnapshotIndex | null>;
  blobs: TargetObject[];
}

export interface OffsitePrunePlan {
  snapshots: string[];
  /** The indexes of the snapshots pruned, removed with them. */
  snapshotIndexes: string[];
  /** Indexes whose snapshot never arrived (or went), past the grace period. */
  orphanIndexes: string[];
  blobs: string[];
}

const snapshotOfIndex = (indexName: string) => indexName.replace(/\.json$/, "");

/**
 * Remote retention, decided without touching the bucket: the job's policy
 * over snapshots (the newest verified one always kept), then the blobs no
 * kept snapshot names once they are older than the grace period (a run in
 * progress may be about to name them), and indexes whose snapshot never
 * arrived. A kept snapshot whose index cannot be read protects every blob:
 * better a full bucket than a broken backup. `alsoNeeded` are blob objects
 * something else still needs (the continuous window: lib/continuous/offsite.ts).
 */
export function planOffsitePrune(l: OffsiteListing, policy: RetentionPolicy, now: Date, graceMs = DEFAULT_GRACE_MS, alsoNeeded: ReadonlySet<string> = new Set()): OffsitePrunePlan {
  const retention = planRetention(
    l.snapshots.map((o) => ({ name: o.name, verified: l.indexes.get(o.name)?.snapshot_bytes === o.size })),
    policy,
    now,
  );
  const pruned = new Set(retention.prune);
  const snapshotIndexes = retention.prune.filter((n) => l.indexes.get(n)).map((n) => `${n}.json`);
  const needed = new Set<string>(alsoNeeded);
  for (const name of retention.keep) {
    const idx = l.indexes.get(name);
    if (!idx) return { snapshots: retention.prune, snapshotIndexes, orphanIndexes: [], blobs: [] };
    for (const [b] of idx.blobs) needed.add(b);
  }
  const cutoff = now.getTime() - graceMs;
  const listed = new Set(l.snapshots.map((o) => o.name));
  const goingWithSnapshot = new Set(snapshotIndexes);
  const orphanIndexes: string[] = [];
  for (const o of l.indexObjects) {
    const snap = snapshotOfIndex(o.name);
    if ((listed.has(snap) && !pruned.has(snap)) || goingWithSnapshot.has(o.name)) continue;
    if (Date.parse(o.modifiedAt) >= cutoff) {
      for (const [b] of l.recentOrphans.get(snap)?.blobs ?? []) needed.add(b);
      continue;
    }
    orphanIndexes.push(o.name);
  }
  const blobs = l.blobs.filter((o) => !needed.has(o.name) && Date.parse(o.modifiedAt) < cutoff).map((o) => o.name);
  return { snapshots: retention.prune, snapshotIndexes, orphanIndexes, blobs };
}

export interface OffsitePruneResult {
  snapshots: string[];
  blobs: number;
  indexes: number;
  partials: number;
}

/** Read what planOffsitePrune needs from the repository (every listing bounded by S3Target.list). */
export async function listForPrune(repo: OffsiteRepo, now: Date, graceMs = DEFAULT_GRACE_MS): Promise<OffsiteListing> {
  const snapshots = (await repo.snapshots.list()).filter((o) => isArchiveName(o.name));
  const indexes = new Map<string, SnapshotIndex | null>();
  await eachLimit(snapshots, 8, async (o) => void indexes.set(o.name, await readIndex(repo, o.name)));
  const indexObjects = await repo.indexes.list();
  const cutoff = now.getTime() - graceMs;
  const recentOrphans = new Map<string, SnapshotIndex | null>();
  const orphans = indexObjects.filter((o) => !indexes.has(snapshotOfIndex(o.name)) && Date.parse(o.modifiedAt) >= cutoff);
  await eachLimit(orphans, 8, async (o) => void recentOrphans.set(snapshotOfIndex(o.name), await readIndex(repo, snapshotOfIndex(o.name))));
  const blobs = await repo.blobs.list();
  return { snapshots, indexes, indexObjects, recentOrphans, blobs };
}

/** Remote retention: plan from the listings, then delete; unfinished multipart uploads past the grace period are aborted. */
export async function pruneOffsite(repo: OffsiteRepo, policy: RetentionPolicy, now: Date, graceMs = DEFAULT_GRACE_MS, alsoNeeded?: ReadonlySet<string>): Promise<OffsitePruneResult> {
  const plan = planOffsitePrune(await listForPrune(repo, now, graceMs), policy, now, graceMs, alsoNeeded);
  for (const name of plan.snapshots) await repo.snapshots.remove(name);
  for (const name of [...plan.snapshotIndexes, ...plan.orphanIndexes]) await repo.indexes.remove(name).catch(() => {});
  for (const name of plan.blobs) await repo.blobs.remove(name);
  let partials = 0;
  const cutoff = new Date(now.getTime() - graceMs);
  for (const t of [repo.snapshots, repo.blobs]) partials += (await t.sweepPartials(cutoff)).length;
  return { snapshots: plan.snapshots, blobs: plan.blobs.length, indexes: plan.orphanIndexes.length, partials };
}
