import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import Database from "better-sqlite3";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, tempDataDir } from "./support/server";
import { readArchive } from "../lib/backup/format/reader";
import { isArchiveName } from "../lib/backup/format/tables";

test("SIGKILL during Backup now never leaves an incomplete archive, and the next start sweeps leftovers", async () => {
  test.setTimeout(240_000);
  const dataDir = tempDataDir();
  let server = await startServer({ dataDir });
  await setupInstance(server);
  let cookie = await signInCookie(server, "admin", "admin-password-1");
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${server.url}/api/documents?name=f${i}.bin`, { method: "POST", headers: { cookie }, body: crypto.randomBytes(25 * 1024 * 1024) });
    expect(res.status).toBe(201);
  }
  const backups = path.join(dataDir, "backups");
  const delays = [5, 60, 150, 300, 600, 900];
  let killedMidWrite = 0;
  let interrupted = 0;
  for (const delay of delays) {
    fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } }).catch(() => {});
    await new Promise((r) => setTimeout(r, delay));
    await server.stop("SIGKILL");
    for (const name of fs.readdirSync(backups).filter(isArchiveName)) {
      // Anything carrying an archive's name is a complete, valid archive.
      await readArchive(fs.createReadStream(path.join(backups, name)));
    }
    if (fs.readdirSync(backups).some((n) => n.endsWith(".partial"))) killedMidWrite++;
    server = await startServer({ dataDir });
    const left = fs.readdirSync(backups).filter((n) => n.endsWith(".partial"));
    expect(left, `after kill at ${delay} ms`).toEqual([]);
    expect(fs.readdirSync(path.join(dataDir, ".tmp"))).toEqual([]);
    cookie = await signInCookie(server, "admin", "admin-password-1");
    // The run the kill interrupted is on record as failed, with why; every success names a real archive.
    const db = new Database(path.join(dataDir, "coffer.db"), { readonly: true });
    const runs = db.prepare("SELECT status, file, error FROM backup_runs ORDER BY id").all() as { status: string; file: string | null; error: string | null }[];
    db.close();
    expect(runs.filter((r) => r.status === "running"), `after kill at ${delay} ms`).toEqual([]);
    for (const r of runs.filter((r) => r.status === "success")) expect(fs.existsSync(path.join(backups, r.file!))).toBe(true);
    const last = runs.at(-1);
    if (last && last.status === "failed") expect(last.error).toBe("Coffer stopped while this backup was running");
    interrupted += runs.filter((r) => r.error === "Coffer stopped while this backup was running").length > interrupted ? 1 : 0;
  }
  // The kills did land while archives were being written.
  expect(killedMidWrite).toBeGreaterThan(0);
  expect(interrupted).toBeGreaterThanOrEqual(killedMidWrite);
  // And a backup still works after all that.
  const res = await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } });
  expect(res.status).toBe(201);
  await server.stop();
});
