import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import Database from "better-sqlite3";
import { test } from "@playwright/test";
import { startServer, signInCookie } from "../e2e/support/server";
import { openInstance, closeInstance } from "../lib/instance";
import { currentSettings, saveSettings } from "../lib/settings/store";
import { LocalDirTarget } from "../lib/backup/local/target";
import { proveStoredArchive } from "../lib/backup/local/prove";
import { runDrill } from "../lib/backup/proof/drill";
import { type DrillDetail } from "../lib/backup/proof/drills-table";
import { stageArchive } from "../lib/backup/restore/staging";
import { applyRestore } from "../lib/backup/restore/apply";
import { measureShell, ensureTools, vaultInstance, fmtMiB, table } from "./support";
import { Targets, percentile } from "./targets";

const WORK = path.resolve(process.env.BENCH_DIR ?? ".bench");

/** Small uploads every 50 ms until `done()` says stop; the latency of each, in milliseconds. */
async function uploads(url: string, cookie: string, done: () => boolean): Promise<number[]> {
  const out: number[] = [];
  const body = Buffer.alloc(4096, 7);
  for (let i = 0; !done(); i++) {
    const t0 = performance.now();
    const res = await fetch(`${url}/api/documents?name=proof-${Date.now()}-${i}.bin`, { method: "POST", headers: { cookie }, body: Buffer.concat([body, Buffer.from(String(i))]) });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`upload answered ${res.status}`);
    out.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, Math.max(0, 50 - (performance.now() - t0))));
  }
  return out;
}

// Runs after backup.bench.ts, on the archive it stored.
test("proof: verification against gzip -t + sha256sum, a drill against a plain restore, uploads while a verification slice runs", async () => {
  const backups = path.join(WORK, "data", "backups");
  const name = fs.existsSync(backups) ? fs.readdirSync(backups).find((n) => n.startsWith("coffer_full_") && n.endsWith(".tar.gz")) : undefined;
  test.skip(!name, "run backup.bench.ts first: it makes the dataset and the archive");
  ensureTools({ sqlite3: "sqlite3" });
  const archive = path.join(backups, name!);
  const size = fs.statSync(archive).size;
  const t = new Targets("proof");

  // 1. Verification of the benchmark archive: Coffer's read-back (every member, one pass) against the two passes a script would do.
  execFileSync("sync");
  const peer = await measureShell(`gzip -t ${archive} && sha256sum ${archive} > /dev/null`);
  const v0 = performance.now();
  const problem = await proveStoredArchive(new LocalDirTarget(backups), name!, { sha256: null }, undefined);
  const verifySeconds = (performance.now() - v0) / 1000;
  if (problem) throw new Error(`the benchmark archive did not verify: ${problem}`);

  // 2. A drill of that archive against a plain restore of it (stage + apply onto a fresh data dir, in this process as the drill is).
  const dataDir = path.join(WORK, "proof-data");
  vaultInstance(path.join(WORK, "data"), dataDir);
  fs.mkdirSync(path.join(dataDir, "backups"), { mode: 0o700 });
  fs.linkSync(archive, path.join(dataDir, "backups", name!));
  const settingsFile = path.join(dataDir, "settings.yaml");
  const s = currentSettings(settingsFile);
  saveSettings(settingsFile, { ...s, backup: { ...s.backup, enabled: false, directory: "data/backups", encryption: { mode: "off", recipients: [], passphrase: null }, offsite: { ...s.backup.offsite, enabled: false }, proof: { verify_period_days: 30, drill_every_days: 0 } } });
  const inst = openInstance(dataDir); // migrates the copy
  // The archive as this instance's own verified backup (the run that wrote it is in the other data dir).
  inst.db.prepare("DELETE FROM backup_runs").run();
  inst.db.prepare("INSERT INTO backup_runs (trigger, scope, started_at, finished_at, status, file, bytes, verified, target) VALUES ('manual', 'full', ?, ?, 'success', ?, ?, 1, 'local')").run(new Date().toISOString(), new Date().toISOString(), name, size);
  const restoredDir = path.join(WORK, "proof-restored");
  fs.rmSync(restoredDir, { recursive: true, force: true });
  execFileSync("sync");
  const p0 = performance.now();
  let fresh = openInstance(restoredDir);
  // Read as Coffer reads a stored backup (the drill's way too).
  const preview = await stageArchive(fresh, await new LocalDirTarget(backups).open(name!));
  fresh = (await applyRestore(fresh, preview.id, { id: null, name: "bench" })).instance;
  const plainSeconds = (performance.now() - p0) / 1000;
  closeInstance(fresh);
  fs.rmSync(restoredDir, { recursive: true, force: true });

  execFileSync("sync");
  const drill = await runDrill(inst, { trigger: "cli" });
  closeInstance(inst);
  if (drill.status !== "success") throw new Error(`the drill did not pass: ${drill.error}`);
  const detail = JSON.parse(drill.detail!) as DrillDetail;

  // 3. Uploads while the server's first verification slice re-reads the archive, against uploads at rest.
  // The copied database remembers the dataset's last slice (quietProofJob records one so that other
  // benches run undisturbed): forget it and every verification, so the server's proof job starts a
  // slice at once and that slice must re-read the archive, not find everything freshly checked.
  const forget = new Database(path.join(dataDir, "coffer.db"));
  forget.exec("DELETE FROM verifications; DELETE FROM meta WHERE key = 'verify_last_slice_at'");
  forget.close();
  execFileSync("sync");
  const sliceStart = new Date().toISOString();
  const server = await startServer({ dataDir });
  const cookie = await signInCookie(server, "admin", "admin-password-1");
  const watcher = new Database(path.join(dataDir, "coffer.db"), { readonly: true });
  const sliceDone = () => !!watcher.prepare("SELECT value FROM meta WHERE key = 'verify_last_slice_at'").pluck().get();
  const s0 = performance.now();
  const during = await uploads(server.url, cookie, sliceDone);
  const sliceSeconds = (performance.now() - s0) / 1000;
  const sliceRead = watcher.prepare("SELECT count(*) AS objects, coalesce(sum(size), 0) AS bytes FROM verifications WHERE verified_at >= ?").get(sliceStart) as { objects: number; bytes: number };
  watcher.close();
  execFileSync("sync");
  const idleEnd = performance.now() + Math.max(10_000, sliceSeconds * 1000);
  const idle = await uploads(server.url, cookie, () => performance.now() > idleEnd);
  await server.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });

  console.log(`\nArchive: ${fmtMiB(size)}\n`);
  table([
    { what: "Coffer verification (read-back, every member)", seconds: verifySeconds.toFixed(1) },
    { what: "gzip -t && sha256sum", seconds: peer.seconds.toFixed(1) },
    { what: "Coffer restore drill (stage, apply, deep check, counts)", seconds: detail.total_s.toFixed(1) },
    { what: "plain restore (stage + apply)", seconds: plainSeconds.toFixed(1) },
  ]);
  console.log(`\nDrill: staged ${detail.stage_s} s, applied ${detail.apply_s} s, checked ${detail.check_s} s; recovery time ${drill.seconds} s`);
  console.log(`Uploads every 50 ms: idle p99 ${percentile(idle, 99).toFixed(1)} ms (${idle.length}); during a verification slice (${sliceSeconds.toFixed(1)} s) p99 ${percentile(during, 99).toFixed(1)} ms (${during.length})\n`);
  t.atMost("verification / (gzip -t + sha256sum)", verifySeconds / peer.seconds, 1.5);
  t.atMost("restore drill / plain restore", detail.total_s / plainSeconds, 1.2);
  console.log(`The slice re-read ${sliceRead.objects} object(s), ${fmtMiB(sliceRead.bytes)}, while ${during.length} uploads ran.`);
  // A slice that read nothing, or ended before one upload, measured nothing: NaN, which is a miss.
  const measured = sliceRead.bytes > 0 && during.length >= 10;
  t.atMost("upload p99 during a verification slice / idle", measured ? percentile(during, 99) / percentile(idle, 99) : NaN, 2);
  t.check();
});
