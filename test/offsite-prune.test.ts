// Remote retention deletes data nobody can get back, so its planner is checked like local retention:
// properties over random repositories, and an oracle written apart from lib/backup/offsite/prune.ts.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { planOffsitePrune, DEFAULT_GRACE_MS, type OffsiteListing } from "@/lib/backup/offsite/prune";
import { planRetention, type RetentionPolicy } from "@/lib/backup/retention";
import { archiveBaseName } from "@/lib/backup/format/tables";
import type { SnapshotIndex } from "@/lib/backup/offsite/repository";
import type { TargetObject } from "@/lib/backup/local/target";

const NOW = new Date("2026-12-06T12:00:00Z");
const HOUR = 3600 * 1000;

const blobName = (i: number) => {
  const hex = i.toString(16).padStart(64, "0");
  return `${hex.slice(0, 2)}/${hex}`;
};
const obj = (name: string, ageMs: number, size = 100): TargetObject => ({ name, size, modifiedAt: new Date(NOW.getTime() - ageMs).toISOString() });
const index = (snapshot: string, blobs: string[], size: number): SnapshotIndex => ({
  snapshot,
  created_at: NOW.toISOString(),
  scope: "full",
  app_version: "test",
  schema_version: 1,
  documents: blobs.length,
  blobs: blobs.map((b) => [b, 10]),
  vault_bytes: blobs.length * 10,
  snapshot_bytes: size,
  snapshot_sha256: "0".repeat(64),
  encryption: "off",
});

/** A repository: snapshots (some with an index that is missing, or that disagrees with the object's size), orphan indexes of runs in progress or long dead, blobs of every age. */
const repoArb = fc
  .record({
    snaps: fc.array(
      fc.record({ ageH: fc.integer({ min: 0, max: 24 * 60 }), index: fc.constantFrom("ok", "ok", "ok", "missing", "wrong-size"), blobs: fc.uniqueArray(fc.nat(40), { maxLength: 8 }) }),
      { maxLength: 12 },
    ),
    orphans: fc.array(fc.record({ ageH: fc.integer({ min: 0, max: 72 }), readable: fc.boolean(), blobs: fc.uniqueArray(fc.nat(40), { maxLength: 6 }) }), { maxLength: 4 }),
    blobs: fc.uniqueArray(fc.record({ i: fc.nat(40), ageH: fc.integer({ min: 0, max: 96 }) }), { selector: (b) => b.i, maxLength: 41 }),
  })
  .map(({ snaps, orphans, blobs }) => {
    const listing: OffsiteListing = { snapshots: [], indexes: new Map(), indexObjects: [], recentOrphans: new Map(), blobs: [] };
    const used = new Set<string>();
    for (const s of snaps) {
      let name = archiveBaseName("full", new Date(NOW.getTime() - s.ageH * HOUR));
      for (let k = 2; used.has(name); k++) name = archiveBaseName("full", new Date(NOW.getTime() - s.ageH * HOUR), k);
      used.add(name);
      listing.snapshots.push(obj(name, s.ageH * HOUR, 500));
      const idx = s.index === "missing" ? null : index(name, s.blobs.map(blobName), s.index === "ok" ? 500 : 499);
      listing.indexes.set(name, idx);
      if (idx) listing.indexObjects.push(obj(`${name}.json`, s.ageH * HOUR));
    }
    orphans.forEach((o, k) => {
      const name = archiveBaseName("db", new Date(NOW.getTime() - 1000 * (k + 1)));
      listing.indexObjects.push(obj(`${name}.json`, o.ageH * HOUR));
      if (o.ageH * HOUR <= DEFAULT_GRACE_MS) listing.recentOrphans.set(name, o.readable ? index(name, o.blobs.map(blobName), 1) : null);
    });
    listing.blobs = blobs.map((b) => obj(blobName(b.i), b.ageH * HOUR));
    return listing;
  });

const policyArb = fc.oneof(
  fc.integer({ min: 1, max: 6 }).map((n): RetentionPolicy => ({ mode: "count", count: n, days: 30, gfs: { latest: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0 } })),
  fc.integer({ min: 1, max: 40 }).map((n): RetentionPolicy => ({ mode: "days", count: 7, days: n, gfs: { latest: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0 } })),
  fc.record({ latest: fc.nat(3), hourly: fc.nat(6), daily: fc.nat(5), weekly: fc.nat(3), monthly: fc.nat(2) }).map((g): RetentionPolicy => ({ mode: "gfs", count: 7, days: 30, gfs: g })),
);

/**
 * The oracle, in the words of the contract: snapshots go as local retention says (verified = the
 * object's size is its index's); then, unless a kept snapshot has no index, a blob goes when it is past
 * the grace period and no kept snapshot and no young index of a run in progress names it, and an index
 * goes when its snapshot is gone (or never came) and it is past the grace period.
 */
function oracle(l: OffsiteListing, policy: RetentionPolicy) {
  const verdict = planRetention(
    l.snapshots.map((s) => ({ name: s.name, verified: l.indexes.get(s.name)?.snapshot_bytes === s.size })),
    policy,
    NOW,
  );
  const kept = new Set(verdict.keep);
  const old = (o: TargetObject) => NOW.getTime() - Date.parse(o.modifiedAt) > DEFAULT_GRACE_MS;
  const snapshotIndexes = verdict.prune.filter((n) => l.indexes.get(n)).map((n) => `${n}.json`);
  if ([...kept].some((n) => !l.indexes.get(n))) return { snapshots: verdict.prune, snapshotIndexes, orphanIndexes: [], blobs: [] };
  const named = new Set<string>();
  for (const n of kept) for (const [b] of l.indexes.get(n)!.blobs) named.add(b);
  for (const o of l.indexObjects) {
    const snap = o.name.slice(0, -".json".length);
    if (!kept.has(snap) && !old(o)) for (const [b] of l.recentOrphans.get(snap)?.blobs ?? []) named.add(b);
  }
  const orphanIndexes = l.indexObjects.filter((o) => {
    const snap = o.name.slice(0, -".json".length);
    return !kept.has(snap) && !snapshotIndexes.includes(o.name) && old(o);
  });
  return {
    snapshots: verdict.prune,
    snapshotIndexes,
    orphanIndexes: orphanIndexes.map((o) => o.name),
    blobs: l.blobs.filter((b) => old(b) && !named.has(b.name)).map((b) => b.name),
  };
}

describe("remote retention's planner", () => {
  it("deletes exactly what the oracle deletes, over random repositories and policies", () => {
    fc.assert(
      fc.property(repoArb, policyArb, (l, policy) => {
        const plan = planOffsitePrune(l, policy, NOW);
        const want = oracle(l, policy);
        expect([...plan.snapshots].sort()).toEqual([...want.snapshots].sort());
        expect([...plan.snapshotIndexes].sort()).toEqual([...want.snapshotIndexes].sort());
        expect([...plan.orphanIndexes].sort()).toEqual([...want.orphanIndexes].sort());
        expect([...plan.blobs].sort()).toEqual([...want.blobs].sort());
      }),
      { numRuns: 500 },
    );
  });

  it("never deletes a blob a kept snapshot names, a young blob, a kept snapshot's index, or the newest verified snapshot", () => {
    fc.assert(
      fc.property(repoArb, policyArb, (l, policy) => {
        const plan = planOffsitePrune(l, policy, NOW);
        const gone = new Set(plan.snapshots);
        const keptNames = l.snapshots.map((s) => s.name).filter((n) => !gone.has(n));
        const deleted = new Set(plan.blobs);
        for (const n of keptNames) for (const [b] of l.indexes.get(n)?.blobs ?? []) expect(deleted.has(b)).toBe(false);
        for (const b of l.blobs) if (NOW.getTime() - Date.parse(b.modifiedAt) <= DEFAULT_GRACE_MS) expect(deleted.has(b.name)).toBe(false);
        for (const n of keptNames) expect([...plan.snapshotIndexes, ...plan.orphanIndexes]).not.toContain(`${n}.json`);
        const verified = l.snapshots.filter((s) => l.indexes.get(s.name)?.snapshot_bytes === s.size).map((s) => s.name).sort();
        if (verified.length) expect(gone.has(verified[verified.length - 1])).toBe(false);
        if (keptNames.some((n) => !l.indexes.get(n))) expect(plan.blobs).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});
