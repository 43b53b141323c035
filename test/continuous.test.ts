import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { makeSetUpInstance } from "./support/instance";
import { currentSettings, parseSettings, saveSettings } from "@/lib/settings/store";
import { createDocument } from "@/lib/vault/documents";
import { continuousPlan, litestreamBinary, replicaWindow } from "@/lib/continuous/litestream";
import { ContinuousSupervisor } from "@/lib/continuous/supervisor";
import type { Instance } from "@/lib/instance";
import { healthReport } from "@/lib/health";
import { renderMetrics } from "@/lib/metrics";

/**
 * Continuous protection against the real Litestream 0.3.13 (the npm package
 * @flydotio/litestream-linux-x64, an optional dependency) and real SQLite.
 */
const binary = litestreamBinary();
if (!binary) console.warn("continuous.test.ts: SKIPPED: no Litestream binary (npm install @flydotio/litestream-linux-x64, or set COFFER_LITESTREAM)");

const body = (s: string) => Readable.from([Buffer.from(s)]);

async function until<T>(what: string, probe: () => T | null | undefined | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

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
    expect(parseSettings("settings.yaml", "backup:\n  enabled: true\n").backup.continuous).toEqual({ enabled: false, window_days: 7 });
    expect(litestreamBinary({ COFFER_LITESTREAM: "/nonexistent/litestream" })).toBeNull();
    if (binary) expect(litestreamBinary({ COFFER_LITESTREAM: binary })).toBe(binary);
  });
});

describe.skipIf(!binary)("the Litestream supervisor", () => {
  it("starts Litestream once continuous protection is on, and the replica appears with every write within seconds", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    expect(currentSettings(t.inst.paths.settings).backup.continuous).toEqual({ enabled: true, window_days: 7 }); // "Protect this instance" keeps every change
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
    const config = path.join(t.inst.paths.tmp, "litestream.yml");
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
