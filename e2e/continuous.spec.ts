import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import Database from "better-sqlite3";
import { expect, test } from "@playwright/test";
import { setupInstance, signInCookie, startServer, uploadDocument } from "./support/server";

/**
 * Continuous protection in the production server: Litestream (the real
 * 0.3.13 binary) starts once setup completes, is stopped and started again
 * around a restore on the running instance (a new generation), and goes
 * when the server stops.
 */
const litestream = path.resolve(__dirname, "../node_modules/@flydotio/litestream-linux-x64/litestream");

test("the server runs Litestream after setup, through a restore, and ends it when it stops", async () => {
  test.skip(!fs.existsSync(litestream) && !process.env.COFFER_LITESTREAM, "no Litestream binary (npm install @flydotio/litestream-linux-x64)");
  test.setTimeout(120_000);
  // The default 15 s tick: only the pause before the swap stops Litestream in time.
  const s = await startServer({ env: { COFFER_TEST_APPLY_DELAY_MS: "2000" } });
  await setupInstance(s);
  const admin = await signInCookie(s, "admin", "admin-password-1");
  const health = async () => (await (await fetch(`${s.url}/api/health`, { headers: { cookie: admin } })).json()).continuous[0];
  const generations = () => fs.readdirSync(path.join(s.dataDir, "backups", "continuous", "generations"));
  await expect.poll(async () => (await health()).last_restorable_at, { timeout: 20_000 }).not.toBeNull();
  await uploadDocument(s, admin, "scan.pdf", Buffer.from("scanned"));
  await expect.poll(async () => (await health()).lag_seconds, { timeout: 10_000 }).toBe(0);
  expect(await health()).toMatchObject({ location: "local", enabled: true });
  expect(s.logs()).toMatch(/Coffer: litestream: .*msg="snapshot written"/);
  expect(generations()).toHaveLength(1);

  // A restore on the running instance: Litestream stops before the swap and starts again on a new generation.
  const run = await fetch(`${s.url}/api/settings/backup/run`, { method: "POST", headers: { cookie: admin } });
  expect(run.status).toBe(201);
  const { name } = await run.json();
  const staged = await fetch(`${s.url}/api/settings/backup/files/${name}/restore`, { method: "POST", headers: { cookie: admin, origin: s.url } });
  expect(staged.status).toBe(201);
  const { id } = await staged.json();
  const pidFile = path.join(s.dataDir, ".continuous", "litestream.pid");
  expect(fs.existsSync(pidFile)).toBe(true);
  const applying = fetch(`${s.url}/api/restore/${id}/apply`, { method: "POST", headers: { cookie: admin, origin: s.url, "content-type": "application/json" }, body: JSON.stringify({ password: "admin-password-1" }) });
  // In maintenance, before the swap (COFFER_TEST_APPLY_DELAY_MS holds it there): no Litestream reads the files being replaced.
  await expect.poll(() => fs.existsSync(pidFile), { timeout: 1500, intervals: [50] }).toBe(false);
  expect((await applying).status).toBe(200);
  await expect.poll(generations, { timeout: 20_000 }).toHaveLength(2);
  expect(s.logs()).toMatch(/litestream: .*signal received, litestream shutting down/);

  const pid = Number(fs.readFileSync(path.join(s.dataDir, ".continuous", "litestream.pid"), "utf8"));
  expect(() => process.kill(pid, 0)).not.toThrow();
  await s.stop();
  await expect.poll(() => { try { process.kill(pid, 0); return "running"; } catch { return "gone"; } }, { timeout: 10_000 }).toBe("gone");
});

test("a server killed with SIGKILL mid-write: the next start ends the Litestream it left, and the replica restores whole", async () => {
  test.skip(!fs.existsSync(litestream) && !process.env.COFFER_LITESTREAM, "no Litestream binary (npm install @flydotio/litestream-linux-x64)");
  test.setTimeout(120_000);
  const s = await startServer({ env: { COFFER_SCHEDULER_TICK_MS: "500" } });
  await setupInstance(s);
  const admin = await signInCookie(s, "admin", "admin-password-1");
  const pidFile = path.join(s.dataDir, ".continuous", "litestream.pid");
  await expect.poll(() => fs.existsSync(pidFile), { timeout: 20_000 }).toBe(true);
  const orphan = Number(fs.readFileSync(pidFile, "utf8"));
  // Uploads in flight when the server dies.
  const uploads = Array.from({ length: 20 }, (_, i) => uploadDocument(s, admin, `scan-${i}.pdf`, Buffer.alloc(50_000, i)).catch(() => null));
  await new Promise((r) => setTimeout(r, 150));
  await s.stop("SIGKILL");
  await Promise.all(uploads);
  expect(() => process.kill(orphan, 0)).not.toThrow(); // SIGKILL leaves the child behind

  const again = await startServer({ dataDir: s.dataDir, env: { COFFER_SCHEDULER_TICK_MS: "500" } });
  await expect.poll(() => (fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, "utf8")) : 0), { timeout: 20_000 }).not.toBe(0);
  expect(Number(fs.readFileSync(pidFile, "utf8"))).not.toBe(orphan);
  await expect.poll(() => { try { process.kill(orphan, 0); return "running"; } catch { return "gone"; } }, { timeout: 5000 }).toBe("gone");
  const cookie = await signInCookie(again, "admin", "admin-password-1");
  await uploadDocument(again, cookie, "after.pdf", Buffer.from("after the crash"));
  await new Promise((r) => setTimeout(r, 2500));
  await again.stop();

  const out = path.join(path.dirname(s.dataDir), "restored.db");
  const bin = process.env.COFFER_LITESTREAM ?? litestream;
  execFileSync(bin, ["restore", "-o", out, `file://${path.join(s.dataDir, "backups", "continuous")}`]);
  const db = new Database(out, { readonly: true });
  try {
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    expect(db.prepare("SELECT count(*) FROM documents WHERE name = 'after.pdf'").pluck().get()).toBe(1);
  } finally {
    db.close();
  }
});
