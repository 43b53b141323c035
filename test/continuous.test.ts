import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { makeSetUpInstance } from "./support/instance";
import { until } from "./support/until";
import { currentSettings, parseSettings, saveSettings } from "@/lib/settings/store";
import { createDocument, deleteDocument, listDocuments } from "@/lib/vault/documents";
import { emptyTrash } from "@/lib/vault/trash";
import { sweepKeptBlobs } from "@/lib/continuous/kept";
import { deepChecks } from "@/lib/doctor";
import { blobPath } from "@/lib/vault/blobs";
import { parsePointInTime, stagePointInTime } from "@/lib/continuous/pitr";
import { applyRestore } from "@/lib/backup/restore/apply";
import type { User } from "@/lib/auth/users";
import { continuousPlan, litestreamBinary, litestreamConfigPath, replicaWindow, writeLitestreamConfig } from "@/lib/continuous/litestream";
import { ContinuousSupervisor } from "@/lib/continuous/supervisor";
import { closeInstance, openInstance, type Instance } from "@/lib/instance";
import { healthReport } from "@/lib/health";
import { renderMetrics } from "@/lib/metrics";
import { runDrill } from "@/lib/backup/proof/drill";
import { writeStoredBackup } from "@/lib/backup/local/stored";

/**
 * Continuous protection against the real Litestream 0.3.13 (the npm package
 * @flydotio/litestream-linux-x64, an optional dependency) and real SQLite.
 */
const binary = litestreamBinary();
if (!binary) console.warn("continuous.test.ts: SKIPPED: no Litestream binary (npm install @flydotio/litestream-linux-x64, or set COFFER_LITESTREAM)");

const body = (s: string) => Readable.from([Buffer.from(s)]);


export function enableContinuous(inst: Instance, on = true): void {
  const s = currentSettings(inst.paths.settings);
  saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, continuous: { ...s.backup.continuous, enabled: on } } });
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("continuous protection's settings", () => {
  it("are off in a settings file from before them, and Litestream is found or reported missing", () => {
    expect(parseSettings("settings.yaml", "backup:\n  enabled: true\n").backup.continuous).toEqual({ enabled: false, window_days: 7, offsite: true });
    expect(litestreamBinary({ COFFER_LITESTREAM: "/nonexistent/litestream" })).toBeNull();
    if (binary) expect(litestreamBinary({ COFFER_LITESTREAM: binary })).toBe(binary);
  });

  it("health says when the Litestream binary is missing", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const was = process.env.COFFER_LITESTREAM;
    process.env.COFFER_LITESTREAM = "/nonexistent/litestream";
    try {
      const r = healthReport(t.inst);
      expect(r.continuous).toEqual([{ location: "local", enabled: true, lag_seconds: null, first_restorable_at: null, last_restorable_at: null }]);
      expect(r.reasons.find((x) => x.code === "CONTINUOUS_UNAVAILABLE")?.message).toMatch(/The Litestream binary is missing/);
      await expect(stagePointInTime(t.inst, new Date())).rejects.toMatchObject({ status: 503, code: "CONTINUOUS_UNAVAILABLE" });
    } finally {
      if (was === undefined) delete process.env.COFFER_LITESTREAM;
      else process.env.COFFER_LITESTREAM = was;
    }
    enableContinuous(t.inst, false);
    expect(healthReport(t.inst).reasons.map((x) => x.code)).not.toContain("CONTINUOUS_UNAVAILABLE");
  });
});

describe.skipIf(!binary)("the Litestream supervisor", () => {
  it("starts Litestream once continuous protection is on, and the replica appears with every write within seconds", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    expect(currentSettings(t.inst.paths.settings).backup.continuous).toEqual({ enabled: true, window_days: 7, offsite: true }); // "Protect this instance" keeps every change
    enableContinuous(t.inst, false);
    const lines: string[] = [];
    const sup = new ContinuousSupervisor(() => t.inst, { log: (l) => lines.push(l) });
    cleanups.push(() => sup.stop());
    sup.start(200);
    await new Promise((r) => setTimeout(r, 600));
    expect(sup.status().running).toBe(false); // off: nothing runs

    enableContinuous(t.inst);
    const plan = continuousPlan(t.inst);
    expect(plan.replica).toBe(path.join(t.inst.paths.backups, "continuous"));
    await until("Litestream to start", () => sup.status().running);
    const config = litestreamConfigPath(t.inst);
    expect(config.startsWith(t.inst.paths.tmp)).toBe(false); // start-up empties .tmp
    expect(fs.statSync(config).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(config, "utf8")).toContain("retention: 192h");
    const first = await until("the first snapshot", () => replicaWindow(plan.replica).last);
    expect(t.inst.db.pragma("wal_autocheckpoint", { simple: true })).toBe(0); // Litestream owns checkpoints while it runs

    await new Promise((r) => setTimeout(r, 1100)); // a later second than the snapshot's
    const wrote = Date.now();
    await createDocument(t.inst, t.admin, null, { name: "scan.pdf", body: body("a scan"), maxBytes: 1e6 });
    const last = await until("the write to reach the replica", () => {
      const w = replicaWindow(plan.replica);
      return w.last && w.last.getTime() > first.getTime() ? w.last : null;
    }, 5000);
    expect(Date.now() - wrote).toBeLessThan(5000);
    expect(last.getTime()).toBeGreaterThanOrEqual(Math.floor(wrote / 1000) * 1000);
    expect(lines.some((l) => l.startsWith("litestream: "))).toBe(true); // its log is in Coffer's

    const health = healthReport(t.inst);
    const start = replicaWindow(plan.replica).first!;
    expect(start.getTime() - first.getTime()).toBeLessThanOrEqual(1000); // the snapshot's second, rounded up: restorable from there
    expect(health.continuous).toEqual([{ location: "local", enabled: true, lag_seconds: 0, first_restorable_at: start.toISOString(), last_restorable_at: expect.any(String) }]);
    expect(Date.parse(health.continuous[0].last_restorable_at!)).toBeGreaterThanOrEqual(last.getTime());
    expect(health.reasons.map((r) => r.code)).not.toContain("CONTINUOUS_LAG");
    const metrics = renderMetrics(t.inst);
    expect(metrics).toContain('coffer_continuous_lag_seconds{location="local"} 0');
    expect(metrics).toContain(`coffer_continuous_window_start_timestamp_seconds{location="local"} ${start.getTime() / 1000}`);

    enableContinuous(t.inst, false);
    await until("Litestream to stop when turned off", () => !sup.status().running);
    expect(t.inst.db.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);

    // Protection back on but Litestream not running: a change the replica lacks, seen ten minutes on.
    enableContinuous(t.inst);
    await new Promise((r) => setTimeout(r, 2100));
    await createDocument(t.inst, t.admin, null, { name: "unprotected.pdf", body: body("not replicated"), maxBytes: 1e6 });
    const later = healthReport(t.inst, Date.now() + 10 * 60_000);
    expect(later.continuous[0].lag_seconds).toBeGreaterThan(600);
    expect(later.status).toBe("degraded");
    expect(later.reasons.find((r) => r.code === "CONTINUOUS_LAG")?.message).toMatch(/Continuous protection \(local\) is 1\d minutes behind/);
  }, 40_000);

  it("restarts Litestream after kill -9, and stop() ends it", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    enableContinuous(t.inst);
    const lines: string[] = [];
    const sup = new ContinuousSupervisor(() => t.inst, { log: (l) => lines.push(l) });
    cleanups.push(() => sup.stop());
    sup.start(60_000); // only the exit handler's backoff timer can bring it back
    const pid = await until("Litestream to start", () => sup.status().pid);
    process.kill(pid, "SIGKILL");
    const again = await until("a new Litestream", () => (sup.status().pid && sup.status().pid !== pid ? sup.status().pid : null), 8000);
    expect(sup.status()).toMatchObject({ running: true, restarts: 1 });
    expect(lines.join("\n")).toMatch(/Litestream stopped \(SIGKILL\); restarting in 1 s/);
    await sup.stop();
    expect(sup.status().running).toBe(false);
    expect(() => process.kill(again!, 0)).toThrow(); // gone
  }, 30_000);
});

describe.skipIf(!binary)("a Litestream left by a killed server", () => {
  it("is ended before a new one starts on the same database", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const plan = continuousPlan(t.inst);
    // As a server killed with SIGKILL leaves it: running, its output going nowhere, its pid recorded.
    const orphan = spawn(binary!, ["replicate", "-config", writeLitestreamConfig(t.inst, plan)], { stdio: "ignore", detached: true });
    cleanups.push(() => orphan.kill("SIGKILL"));
    fs.writeFileSync(path.join(t.inst.paths.root, ".continuous", "litestream.pid"), `${orphan.pid}\n`);
    const gone = new Promise<string>((resolve) => orphan.once("exit", (_c, sig) => resolve(String(sig))));
    const sup = new ContinuousSupervisor(() => t.inst, { log: () => {} });
    cleanups.push(() => sup.stop());
    sup.start(60_000);
    expect(await gone).toBe("SIGKILL");
    expect(sup.status().running).toBe(true);
    expect(sup.status().pid).not.toBe(orphan.pid);
  }, 30_000);
});

describe.skipIf(!binary)("restore to a point in time", () => {
  it("brings back a batch of deleted documents from the continuous replica, through the staged pipeline, and Litestream goes on in a new generation", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    let serving: Instance = t.inst;
    const sup = new ContinuousSupervisor(() => serving, { log: () => {} });
    cleanups.push(() => sup.stop());
    sup.start(200);
    const plan = continuousPlan(t.inst);
    await until("the first snapshot", () => replicaWindow(plan.replica).last);
    const docs = [];
    for (const n of ["a.pdf", "b.pdf", "c.pdf", "d.pdf"]) docs.push(await createDocument(t.inst, t.admin, null, { name: n, body: body(`content of ${n}`), maxBytes: 1e6 }));
    await new Promise((r) => setTimeout(r, 2500)); // shipped (1 s sync) and a later second
    const before = new Date(Math.floor(Date.now() / 1000) * 1000);
    await new Promise((r) => setTimeout(r, 1100));
    for (const d of docs.slice(0, 3)) deleteDocument(t.inst, t.admin, null, d.id);
    expect(emptyTrash(t.inst, t.admin, null)).toBe(3); // erased for good: rows gone, their files kept for the window
    for (const d of docs) expect(fs.existsSync(blobPath(t.inst.paths, d.sha256))).toBe(true);
    const late = await createDocument(t.inst, t.admin, null, { name: "e.pdf", body: body("uploaded after the time"), maxBytes: 1e6 });
    expect(listDocuments(t.inst, t.admin).map((d) => d.name).sort()).toEqual(["d.pdf", "e.pdf"]);
    await until("the deletions to reach the replica", () => (replicaWindow(plan.replica).last!.getTime() > before.getTime() ? true : null), 5000);
    await sup.pause(); // as a restore does

    const preview = await stagePointInTime(t.inst, before);
    expect(preview).toMatchObject({ created_at: before.toISOString(), scope: "full", encrypted: false, vault: { objects: 4 } });
    expect(preview.tables.documents).toBe(4);
    const { instance: restored, restored_from, prerestore } = await applyRestore(t.inst, preview.id, { id: null, name: "test" });
    cleanups.push(() => closeInstance(restored));
    expect(restored_from).toBe(before.toISOString());
    expect(prerestore).toMatch(/^coffer_prerestore_/);
    const admin = restored.db.prepare("SELECT * FROM users WHERE username = 'admin'").get() as User;
    const back = listDocuments(restored, admin);
    expect(back.map((d) => d.name).sort()).toEqual(["a.pdf", "b.pdf", "c.pdf", "d.pdf"]);
    for (const d of back) expect(fs.readFileSync(blobPath(restored.paths, d.sha256), "utf8")).toBe(`content of ${d.name}`);
    expect(restored.db.pragma("integrity_check", { simple: true })).toBe("ok");
    // e.pdf's file is another second of the window: it stays, kept, not a stray; the window's end lets it go.
    expect(fs.existsSync(blobPath(restored.paths, late.sha256))).toBe(true);
    expect((await deepChecks(restored)).find((f) => f.check === "vault.untracked")?.severity).toBe("ok");
    expect(sweepKeptBlobs(restored)).toBe(0);
    expect(sweepKeptBlobs(restored, Date.now() + 8 * 24 * 3600_000)).toBe(1);
    expect(fs.existsSync(blobPath(restored.paths, late.sha256))).toBe(false);
    for (const d of back) expect(fs.existsSync(blobPath(restored.paths, d.sha256))).toBe(true);

    serving = restored;
    const gens = replicaWindow(plan.replica).generations;
    sup.resume();
    await until("a new generation after the restore", () => replicaWindow(plan.replica).generations > gens);
    // Litestream's shadow WAL of the database that was replaced is gone (litestream.io/tips, "Deleting SQLite databases").
    expect(fs.readdirSync(path.join(plan.meta, "generations"))).toHaveLength(1);
    // The time before the restore is still restorable from the old generation.
    expect(replicaWindow(plan.replica).first!.getTime()).toBeLessThanOrEqual(before.getTime());
  }, 60_000);

  it("refuses a time outside the window, naming the window, and a time that is not one", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    await expect(stagePointInTime(t.inst, new Date())).rejects.toMatchObject({ code: "CONTINUOUS_EMPTY" });
    const sup = new ContinuousSupervisor(() => t.inst, { log: () => {} });
    cleanups.push(() => sup.stop());
    sup.start(200);
    const plan = continuousPlan(t.inst);
    const last = await until("the first snapshot", () => replicaWindow(plan.replica).last);
    const w = replicaWindow(plan.replica);
    const iso = (d: Date) => d.toISOString().replace(".000Z", "Z");
    const early = new Date(w.first!.getTime() - 3600_000);
    const err = await stagePointInTime(t.inst, early).catch((e) => e);
    expect(err).toMatchObject({ status: 422, code: "OUTSIDE_WINDOW" });
    expect(err.message).toBe(`${iso(early)} is outside the window continuous protection covers: from ${iso(w.first!)} to ${iso(last)} (UTC). Choose a time in it.`);
    await expect(stagePointInTime(t.inst, new Date(Date.now() + 3600_000))).rejects.toMatchObject({ code: "OUTSIDE_WINDOW" });
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]); // nothing staged
    expect(() => parsePointInTime("yesterday at ten")).toThrow(/not a time Coffer can restore to/);
    expect(() => parsePointInTime("2026-12-06T10:41:00")).toThrow(/with its zone/); // no zone: refused, not guessed
    expect(parsePointInTime("2026-12-06T11:41:00+01:00").toISOString()).toBe("2026-12-06T10:41:00.000Z");
  }, 30_000);
});

describe.skipIf(!binary)("coffer restore --to-time", () => {
  it("refuses a time outside the window and restores a time inside it, the server stopped", async () => {
    const ROOT = path.resolve(__dirname, "..");
    execFileSync(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", path.join(ROOT, "tsconfig.cli.json")], { cwd: ROOT });
    const coffer = (args: string[]) => spawnSync(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), ...args], { encoding: "utf8", env: { ...process.env, COFFER_DATA_DIR: "" } });
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const sup = new ContinuousSupervisor(() => t.inst, { log: () => {} });
    cleanups.push(() => sup.stop());
    sup.start(200);
    const plan = continuousPlan(t.inst);
    await until("the first snapshot", () => replicaWindow(plan.replica).last);
    const kept = await createDocument(t.inst, t.admin, null, { name: "invoice.pdf", body: body("the invoice"), maxBytes: 1e6 });
    await new Promise((r) => setTimeout(r, 2500));
    const before = new Date(Math.floor(Date.now() / 1000) * 1000);
    await new Promise((r) => setTimeout(r, 1100));
    deleteDocument(t.inst, t.admin, null, kept.id);
    await until("the deletion to reach the replica", () => (replicaWindow(plan.replica).last!.getTime() > before.getTime() ? true : null), 5000);
    await sup.stop(); // the server stops
    closeInstance(t.inst);
    const dataDir = t.inst.paths.root;

    const w = replicaWindow(plan.replica);
    const outside = coffer(["restore", "--data-dir", dataDir, "--to-time", "2020-01-01T00:00:00Z", "--yes"]);
    expect(outside.status).toBe(1);
    expect(outside.stderr).toContain(`2020-01-01T00:00:00Z is outside the window continuous protection covers: from ${w.first!.toISOString().replace(".000Z", "Z")} to`);
    expect(coffer(["restore", "--data-dir", dataDir, "--to-time", "ten past ten", "--yes"]).stderr).toMatch(/not a time Coffer can restore to/);

    const r = coffer(["restore", "--data-dir", dataDir, "--to-time", before.toISOString(), "--yes"]);
    expect(r.stderr + r.stdout).toContain(`Restored the backup of ${before.toISOString()}.`);
    expect(r.status).toBe(0);
    const restored = openInstance(dataDir);
    cleanups.push(() => closeInstance(restored));
    expect(restored.db.prepare("SELECT name, deleted_at FROM documents").all()).toEqual([{ name: "invoice.pdf", deleted_at: null }]);
  }, 120_000);
});

describe.skipIf(!binary)("the restore drill and the continuous replica", () => {
  it("restores a moment ago from the replica into scratch and checks it; a replica that does not restore fails the drill", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    enableContinuous(t.inst);
    const sup = new ContinuousSupervisor(() => t.inst, { log: () => {} });
    cleanups.push(() => sup.stop());
    sup.start(200);
    const plan = continuousPlan(t.inst);
    await until("the first snapshot", () => replicaWindow(plan.replica).last);
    await new Promise((r) => setTimeout(r, 1100)); // a later second than the snapshot's
    for (const name of ["a.pdf", "b.pdf"]) await createDocument(t.inst, t.admin, null, { name, body: body(name), maxBytes: 1e6 });
    await writeStoredBackup(t.inst, { scope: "full", trigger: "manual" });
    await new Promise((r) => setTimeout(r, 1500));
    // The replica's newest second is whole: a later write puts the two documents' WAL safely before it.
    await createDocument(t.inst, t.admin, null, { name: "c.pdf", body: body("c.pdf"), maxBytes: 1e6 });
    await new Promise((r) => setTimeout(r, 2500));
    await until("the writes to reach the replica", () => healthReport(t.inst).continuous[0].lag_seconds === 0);

    const drill = await runDrill(t.inst, { trigger: "manual", continuousAgoMs: 1000 });
    expect(drill.status, drill.error ?? "").toBe("success");
    const detail = JSON.parse(drill.detail!);
    expect(detail.continuous, JSON.stringify(detail.continuous)).toMatchObject({ documents: expect.any(Number), seconds: expect.any(Number) });
    expect(detail.continuous.documents).toBeGreaterThanOrEqual(2);
    expect(fs.readdirSync(t.inst.paths.tmp)).toEqual([]); // both scratch instances gone
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]);

    // A replica damaged on disk: the archive still restores, the drill fails and says it was the replica.
    await sup.stop();
    const generation = fs.readdirSync(path.join(plan.replica, "generations"))[0];
    const snapshots = path.join(plan.replica, "generations", generation, "snapshots");
    for (const f of fs.readdirSync(snapshots)) {
      const file = path.join(snapshots, f);
      const st = fs.statSync(file);
      fs.writeFileSync(file, Buffer.alloc(st.size, 7));
      fs.utimesSync(file, st.atime, st.mtime); // the same window; only the bytes went bad
    }
    const broken = await runDrill(t.inst, { trigger: "manual", continuousAgoMs: 1000 });
    expect(broken.status, broken.detail ?? "").toBe("failed");
    expect(broken.error).toMatch(/^the continuous replica did not restore \S+: /);
    expect(fs.readdirSync(t.inst.paths.tmp)).toEqual([]);
  }, 60_000);
});
