import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { planRetention, PRERESTORE_MIN_AGE_MS, type RetentionPolicy } from "@/lib/backup/retention";
import { archiveBaseName, isArchiveName, type Scope } from "@/lib/backup/format/tables";

const NOW = new Date("2026-11-22T12:00:00Z");
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

const gfs = (g: Partial<RetentionPolicy["gfs"]> = {}): RetentionPolicy => ({
  mode: "gfs",
  count: 7,
  days: 30,
  gfs: { latest: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, ...g },
});
const count = (n: number): RetentionPolicy => ({ mode: "count", count: n, days: 30, gfs: gfs().gfs });
const days = (n: number): RetentionPolicy => ({ mode: "days", count: 7, days: n, gfs: gfs().gfs });

const fileArb = fc.record({
  ageSeconds: fc.integer({ min: 0, max: 400 * 86400 }),
  scope: fc.constantFrom<Scope>("full", "db", "vault", "prerestore"),
  verified: fc.boolean(),
});
const noise = fc.constantFrom("notes.txt", "coffer_full_latest.tar.gz", ".coffer_full_20261122_000000Z.tar.gz.partial", "coffer.db", "coffer_full_20261122_000000Z.tar");
const historyArb = fc.tuple(fc.array(fileArb, { maxLength: 60 }), fc.array(noise, { maxLength: 5 })).map(([files, extra]) => {
  const names = new Set<string>();
  const out: { name: string; verified: boolean }[] = [];
  for (const f of files) {
    const at = new Date(NOW.getTime() - f.ageSeconds * 1000);
    let name = archiveBaseName(f.scope, at);
    for (let i = 2; names.has(name); i++) name = archiveBaseName(f.scope, at, i);
    names.add(name);
    out.push({ name, verified: f.verified });
  }
  return [...out, ...[...new Set(extra)].map((name) => ({ name, verified: true }))];
});
const policyArb = fc.oneof(
  fc.integer({ min: 1, max: 20 }).map(count),
  fc.integer({ min: 1, max: 100 }).map(days),
  fc.record({ latest: fc.nat(12), hourly: fc.nat(30), daily: fc.nat(10), weekly: fc.nat(6), monthly: fc.nat(8) }).map(gfs),
);

const ageOf = (name: string) => {
  const m = /_(\d{8})_(\d{6})Z/.exec(name)!;
  const t = Date.parse(`${m[1].slice(0, 4)}-${m[1].slice(4, 6)}-${m[1].slice(6)}T${m[2].slice(0, 2)}:${m[2].slice(2, 4)}:${m[2].slice(4)}Z`);
  return NOW.getTime() - t;
};

describe("retention properties over random histories", () => {
  it("never prunes the newest verified backup, never touches a non-archive, keeps young prerestores; keep and prune partition the archives", () => {
    fc.assert(
      fc.property(historyArb, policyArb, (files, policy) => {
        const { keep, prune } = planRetention(files, policy, NOW);
        const archives = files.filter((f) => isArchiveName(f.name));
        expect([...keep, ...prune].sort()).toEqual(archives.map((f) => f.name).sort());
        for (const n of prune) expect(isArchiveName(n)).toBe(true);
        const newestVerified = archives.filter((f) => f.verified).sort((a, b) => ageOf(a.name) - ageOf(b.name) || (a.name < b.name ? 1 : -1))[0];
        if (newestVerified) expect(keep).toContain(newestVerified.name);
        for (const f of archives) if (f.name.includes("_prerestore_") && ageOf(f.name) < PRERESTORE_MIN_AGE_MS) expect(keep).toContain(f.name);
      }),
      { numRuns: 400 },
    );
  });

  it("count keeps exactly the newest N (plus the protected ones)", () => {
    fc.assert(
      fc.property(historyArb, fc.integer({ min: 1, max: 20 }), (files, n) => {
        const archives = files.filter((f) => isArchiveName(f.name));
        const sorted = [...archives].sort((a, b) => ageOf(a.name) - ageOf(b.name) || (a.name < b.name ? 1 : -1));
        const expected = new Set(sorted.slice(0, n).map((f) => f.name));
        const nv = sorted.find((f) => f.verified);
        if (nv) expected.add(nv.name);
        for (const f of sorted) if (f.name.includes("_prerestore_") && ageOf(f.name) < PRERESTORE_MIN_AGE_MS) expected.add(f.name);
        expect(new Set(planRetention(files, count(n), NOW).keep)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("days keeps exactly those newer than N days (plus the protected ones)", () => {
    fc.assert(
      fc.property(historyArb, fc.integer({ min: 1, max: 100 }), (files, n) => {
        const archives = files.filter((f) => isArchiveName(f.name));
        const { keep } = planRetention(files, days(n), NOW);
        for (const f of archives) if (ageOf(f.name) <= n * DAY) expect(keep).toContain(f.name);
        const protectedNames = new Set<string>();
        const nv = [...archives].sort((a, b) => ageOf(a.name) - ageOf(b.name) || (a.name < b.name ? 1 : -1)).find((f) => f.verified);
        if (nv) protectedNames.add(nv.name);
        for (const f of archives) if (f.name.includes("_prerestore_") && ageOf(f.name) < PRERESTORE_MIN_AGE_MS) protectedNames.add(f.name);
        for (const k of keep) expect(ageOf(k) <= n * DAY || protectedNames.has(k)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe("GFS over 400 synthetic days", () => {
  // One verified full backup every 6 hours for 400 days.
  const files = Array.from({ length: 400 * 4 }, (_, i) => ({ name: archiveBaseName("full", new Date(NOW.getTime() - i * 6 * HOUR)), verified: true }));

  it("keeps latest 10, one per hour for 24 hours with backups, 7 days, 4 weeks, 6 months", () => {
    const { keep } = planRetention(files, gfs({ latest: 10, hourly: 24, daily: 7, weekly: 4, monthly: 6 }), NOW);
    const ages = keep.map((n) => ageOf(n) / HOUR).sort((a, b) => a - b);
    // latest 10 and hourly 24 (each 6-hourly backup is its own hour): the newest 24 backups = 138 hours.
    expect(ages.slice(0, 24)).toEqual(Array.from({ length: 24 }, (_, i) => i * 6));
    // Nothing older than ~6 months plus a month survives.
    expect(Math.max(...ages)).toBeLessThan(7 * 31 * 24);
    // Every one of the last 6 months that has backups is represented.
    const months = new Set(keep.map((n) => n.slice(12, 18)));
    expect(months.size).toBeGreaterThanOrEqual(6);
    expect(keep.length).toBeLessThanOrEqual(10 + 24 + 7 + 4 + 6);
    expect(keep.length).toBeGreaterThanOrEqual(24 + 6);
  });

  it("daily keeps the newest backup of each of the last N days", () => {
    const { keep } = planRetention(files, gfs({ daily: 7 }), NOW);
    expect(keep).toHaveLength(7);
    const dayKeys = keep.map((n) => n.slice(12, 20));
    expect(new Set(dayKeys).size).toBe(7);
    // The newest of each day: for today that is the newest backup of all.
    expect(keep[0]).toBe(files[0].name);
  });

  it("the newest verified backup survives even a policy that keeps nothing", () => {
    const some = files.slice(0, 10).map((f, i) => ({ ...f, verified: i === 3 }));
    const { keep } = planRetention(some, gfs({}), NOW);
    expect(keep).toEqual([some[3].name]);
  });
});

/**
 * An oracle written independently of lib/backup/jobs/retention.ts: ISO week by
 * counting from the week's Monday to the Thursday that names its year, and
 * calendar months from the date's own fields. GFS keeps, for each of the
 * last N buckets that hold a backup, the newest backup in it (restic --keep-*).
 */
function isoWeekOracle(t: number): string {
  const d = new Date(t);
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const mondayOffset = (new Date(midnight).getUTCDay() + 6) % 7; // Monday = 0
  const thursday = new Date(midnight + (3 - mondayOffset) * DAY);
  const year = thursday.getUTCFullYear();
  const dayOfYear = Math.round((thursday.getTime() - Date.UTC(year, 0, 1)) / DAY);
  return `${year}-W${Math.floor(dayOfYear / 7) + 1}`;
}

function gfsOracle(times: number[], g: RetentionPolicy["gfs"]): Set<number> {
  const sorted = [...times].sort((a, b) => b - a);
  const keep = new Set(sorted.slice(0, g.latest));
  const bucketers: [number, (t: number) => string][] = [
    [g.hourly, (t) => new Date(t).toISOString().slice(0, 13)],
    [g.daily, (t) => new Date(t).toISOString().slice(0, 10)],
    [g.weekly, isoWeekOracle],
    [g.monthly, (t) => `${new Date(t).getUTCFullYear()}-${new Date(t).getUTCMonth() + 1}`],
  ];
  for (const [limit, bucket] of bucketers) {
    const seen = new Set<string>();
    for (const t of sorted) {
      const b = bucket(t);
      if (seen.has(b)) continue;
      if (seen.size === limit) break;
      seen.add(b);
      keep.add(t);
    }
  }
  return keep;
}

describe("GFS against an independent oracle", () => {
  it("knows the ISO weeks at year ends (the oracle itself, on known dates)", () => {
    expect(isoWeekOracle(Date.parse("2020-12-31T12:00:00Z"))).toBe("2020-W53");
    expect(isoWeekOracle(Date.parse("2021-01-03T12:00:00Z"))).toBe("2020-W53");
    expect(isoWeekOracle(Date.parse("2021-01-04T00:00:00Z"))).toBe("2021-W1");
    expect(isoWeekOracle(Date.parse("2024-12-30T00:00:00Z"))).toBe("2025-W1");
    expect(isoWeekOracle(Date.parse("2026-12-31T23:59:59Z"))).toBe("2026-W53");
  });

  it("keeps exactly the oracle's set for random histories across year ends, ISO week 53 and month ends", () => {
    // Histories around the turns of 2020/21 (week 53), 2024/25 (Dec 30 in week 1) and 2026/27 (week 53).
    const anchors = ["2021-01-10T00:00:00Z", "2025-01-12T00:00:00Z", "2027-01-10T00:00:00Z"].map(Date.parse);
    const arb = fc.record({
      now: fc.constantFrom(...anchors),
      ages: fc.uniqueArray(fc.integer({ min: 0, max: 120 * 86400 }), { minLength: 1, maxLength: 80 }),
      g: fc.record({ latest: fc.nat(3), hourly: fc.nat(5), daily: fc.nat(6), weekly: fc.nat(8), monthly: fc.nat(5) }),
    });
    fc.assert(
      fc.property(arb, ({ now, ages, g }) => {
        const times = ages.map((a) => now - a * 1000);
        const files = times.map((t) => ({ name: archiveBaseName("full", new Date(t)), verified: false }));
        const { keep } = planRetention(files, gfs(g), new Date(now));
        const want = [...gfsOracle(times, g)].map((t) => archiveBaseName("full", new Date(t))).sort();
        expect([...keep].sort()).toEqual(want);
      }),
      { numRuns: 400 },
    );
  });
});
