import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import Database from "better-sqlite3";
import { expect, test } from "@playwright/test";
import { cookiesFor, setupInstance, signInCookie, startServer, uploadDocument } from "./support/server";

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

/** The mtime in ms of the newest snapshot or WAL file in a file replica, or 0. */
function newestReplicaFile(replica: string): number {
  let newest = 0;
  const gens = path.join(replica, "generations");
  for (const g of fs.existsSync(gens) ? fs.readdirSync(gens) : [])
    for (const sub of ["snapshots", "wal"]) {
      const dir = path.join(gens, g, sub);
      for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) newest = Math.max(newest, fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.mtimeMs ?? 0);
    }
  return newest;
}

const litestreamLines = (logs: string) => logs.split("\n").filter((l) => l.includes("litestream")).slice(-30).join("\n");

/** A time as a datetime-local input in Berlin shows it (the browser below runs in that zone). */
const inBerlin = (ms: number) =>
  new Intl.DateTimeFormat("sv-SE", { timeZone: "Europe/Berlin", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
    .format(new Date(ms))
    .replace(" ", "T");

test("a batch deleted by mistake: the admin restores the instance to the second before, in Settings, and the batch is back", async ({ browser }) => {
  test.skip(!fs.existsSync(litestream) && !process.env.COFFER_LITESTREAM, "no Litestream binary (npm install @flydotio/litestream-linux-x64)");
  test.setTimeout(120_000);
  const s = await startServer();
  try {
    await setupInstance(s);
    const admin = await signInCookie(s, "admin", "admin-password-1");
    const health = async () => (await (await fetch(`${s.url}/api/health`, { headers: { cookie: admin } })).json()).continuous[0];
    await expect.poll(async () => (await health()).last_restorable_at, { timeout: 20_000 }).not.toBeNull();
    const batch = [];
    for (let i = 0; i < 3; i++) batch.push(await uploadDocument(s, admin, `invoice-${i}.pdf`, Buffer.from(`invoice ${i}`)));
    await uploadDocument(s, admin, "keep.pdf", Buffer.from("kept"));
    await expect.poll(async () => (await health()).lag_seconds, { timeout: 10_000 }).toBe(0);
    // Health calls a replica current up to 2 s behind the WAL (Litestream syncs each second): let the uploads' sync land first.
    await new Promise((r) => setTimeout(r, 3000));
    const before = Math.floor(Date.now() / 1000) * 1000; // the input takes whole seconds
    await new Promise((r) => setTimeout(r, 1200));
    const deleting = Date.now();
    for (const d of batch) expect((await fetch(`${s.url}/api/documents/${d.id}`, { method: "DELETE", headers: { cookie: admin, origin: s.url } })).status).toBe(204);
    // The deletes are in the replica once one of its files is newer than they are (health's whole seconds cannot say so).
    await expect
      .poll(() => newestReplicaFile(path.join(s.dataDir, "backups", "continuous")), { timeout: 30_000, message: `no replica file after the deletes; Litestream said:\n${litestreamLines(s.logs())}` })
      .toBeGreaterThan(deleting);
    expect(Date.parse((await health()).last_restorable_at)).toBeGreaterThanOrEqual(before);

    // The API: a time it cannot read, a time outside the window, and nobody but an admin.
    const post = (body: unknown, cookie = admin) =>
      fetch(`${s.url}/api/settings/backup/continuous/restore`, { method: "POST", headers: { cookie, origin: s.url, "content-type": "application/json" }, body: JSON.stringify(body) });
    const vague = await post({ at: "yesterday at ten" });
    expect(vague.status).toBe(400);
    expect((await vague.json()).error.code).toBe("BAD_TIME");
    const early = await post({ at: "2020-01-01T00:00:00Z" });
    expect(early.status).toBe(422);
    expect((await early.json()).error).toMatchObject({ code: "OUTSIDE_WINDOW", message: expect.stringMatching(/is outside the window continuous protection covers: from \S+ to \S+/) });
    expect((await fetch(`${s.url}/api/settings/backup/continuous/restore`, { method: "POST", body: "{}" })).status).toBe(401);
    expect(fs.readdirSync(path.join(s.dataDir, ".staging"))).toEqual([]);

    // The browser, in Berlin: Settings → Backup → Restore to a point in time.
    const ctx = await browser.newContext({ timezoneId: "Europe/Berlin" });
    await ctx.addCookies(cookiesFor(s, admin));
    const page = await ctx.newPage();
    await page.goto(`${s.url}/settings/backup`);
    const card = page.getByTestId("pitr");
    await expect(card).toContainText("Every change is kept from");
    await card.getByLabel("Restore to").fill(inBerlin(Date.now() + 3_600_000));
    await expect(card.getByText("That time is outside the window above.")).toBeVisible();
    await expect(card.getByRole("button", { name: "Check this point in time" })).toBeDisabled();
    await card.getByLabel("Restore to").fill(inBerlin(before));
    await card.getByRole("button", { name: "Check this point in time" }).click();
    const preview = page.getByTestId("restore-preview");
    await expect(preview).toBeVisible({ timeout: 30_000 });
    await expect(preview).toContainText(`${new Date(before).toISOString().slice(0, 19).replace("T", " ")} UTC`); // the moment chosen in Berlin, as UTC
    // What differs from now, in plain words: the batch in the trash would come back.
    await expect(page.getByTestId("restore-changes")).toContainText("3 documents would come back (deleted since, or in the trash now): invoice-2.pdf, invoice-1.pdf, invoice-0.pdf.");
    await page.getByLabel("Your password").fill("admin-password-1");
    await page.getByRole("button", { name: "Restore this backup" }).click();
    await expect(page).toHaveURL(/\/login\?restored=/, { timeout: 30_000 });
    await ctx.close();

    const again = await signInCookie(s, "admin", "admin-password-1");
    const docs = (await (await fetch(`${s.url}/api/documents`, { headers: { cookie: again } })).json()).documents as { name: string }[];
    expect(docs.map((d) => d.name).sort()).toEqual(["invoice-0.pdf", "invoice-1.pdf", "invoice-2.pdf", "keep.pdf"]);
  } finally {
    await s.stop();
  }
});
