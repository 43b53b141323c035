import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import Database from "better-sqlite3";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, type Server } from "../e2e/support/server";
import { rssSampler, idleRss, measureShell, ensureTools, GiB, MiB, fmtMiB, table, quietProofJob } from "./support";
import { Targets } from "./targets";

const DB_TARGET = Number(process.env.BENCH_DB_BYTES ?? 1.05 * GiB);
const VAULT_TARGET = Number(process.env.BENCH_VAULT_BYTES ?? 1.05 * GiB);
const FILE_BYTES = 11 * MiB;
const WORK = path.resolve(process.env.BENCH_DIR ?? ".bench");

/** Word soup: compresses like real text (about 3:1 at gzip -1), not like a repeated pattern. */
function textPool(chunks: number): Buffer[] {
  const words = Array.from({ length: 4096 }, () => crypto.randomBytes(3 + (crypto.randomInt(6))).toString("base64url").toLowerCase());
  return Array.from({ length: chunks }, () => {
    const parts: string[] = [];
    let n = 0;
    while (n < MiB) {
      const line = `2026-11-22T03:${String(crypto.randomInt(60)).padStart(2, "0")} ${words[crypto.randomInt(4096)]} ${words[crypto.randomInt(4096)]}=${crypto.randomInt(1e6)} ${words[crypto.randomInt(4096)]}\n`;
      parts.push(line);
      n += line.length;
    }
    return Buffer.from(parts.join("")).subarray(0, MiB);
  });
}

async function uploadVault(server: Server, cookie: string): Promise<number> {
  const pool = textPool(48);
  let total = 0;
  for (let i = 0; total < VAULT_TARGET; i++) {
    const body =
      i % 2 === 0
        ? Buffer.concat(Array.from({ length: FILE_BYTES / MiB }, () => pool[crypto.randomInt(pool.length)]))
        : crypto.randomBytes(FILE_BYTES); // stands in for photos, PDFs, archives: already compressed
    const res = await fetch(`${server.url}/api/documents?name=file-${i}.${i % 2 ? "jpg" : "log"}`, { method: "POST", headers: { cookie }, body });
    expect(res.status).toBe(201);
    total += body.length;
  }
  return total;
}

function fillDatabase(file: string): number {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, note TEXT NOT NULL, payload BLOB NOT NULL)");
  const text = textPool(4).map((b) => b.toString()).join("");
  const insert = db.prepare(
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000)
     INSERT INTO bench_rows (note, payload) SELECT substr(?, 1 + (abs(random()) % 3000000), 2000), randomblob(1800) FROM c`,
  );
  const size = () => (db.pragma("page_count", { simple: true }) as number) * (db.pragma("page_size", { simple: true }) as number);
  while (size() < DB_TARGET) insert.run(text);
  db.pragma("wal_checkpoint(TRUNCATE)");
  const bytes = size();
  db.close();
  return bytes;
}

async function throttledDownload(url: string, cookie: string, bytesPerSecond: number): Promise<{ bytes: number; seconds: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { headers: { cookie } });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let bytes = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.length;
    const due = (bytes / bytesPerSecond) * 1000 - (performance.now() - t0);
    if (due > 0) await new Promise((r) => setTimeout(r, due));
  }
  return { bytes, seconds: (performance.now() - t0) / 1000 };
}

test("backup: Coffer against sqlite3 .backup + tar czf, and gzip -1", async () => {
  ensureTools({ sqlite3: "sqlite3", tar: "tar", gzip: "gzip" });
  const dataDir = path.join(WORK, "data");
  const marker = path.join(WORK, "dataset.json");
  const wanted = { db: DB_TARGET, vault: VAULT_TARGET };
  let server: Server;
  let cookie: string;
  let dbBytes: number;
  let vaultBytes: number;
  const previous = fs.existsSync(marker) ? JSON.parse(fs.readFileSync(marker, "utf8")) : null;
  if (previous && previous.db === wanted.db && previous.vault === wanted.vault && process.env.BENCH_FRESH !== "1") {
    // Same dataset as last time (BENCH_FRESH=1 makes a new one): only the stored archives go.
    ({ dbBytes, vaultBytes } = previous);
    for (const f of fs.readdirSync(path.join(dataDir, "backups"))) fs.rmSync(path.join(dataDir, "backups", f));
    console.log("Reusing the dataset in " + dataDir);
  } else {
    fs.rmSync(WORK, { recursive: true, force: true });
    fs.mkdirSync(WORK, { recursive: true });
    console.log("Generating the dataset (database and vault of about 1 GiB each)…");
    quietProofJob(dataDir);
    server = await startServer({ dataDir });
    await setupInstance(server);
    cookie = await signInCookie(server, "admin", "admin-password-1");
    vaultBytes = await uploadVault(server, cookie);
    await server.stop();
    dbBytes = fillDatabase(path.join(dataDir, "coffer.db"));
    fs.writeFileSync(marker, JSON.stringify({ ...wanted, dbBytes, vaultBytes }));
  }
  console.log(`Database ${fmtMiB(dbBytes)}, vault ${fmtMiB(vaultBytes)}`);
  const input = dbBytes + vaultBytes;

  if (process.env.BENCH_ONLY_DOWNLOAD === "1") {
    quietProofJob(dataDir);
    server = await startServer({ dataDir });
    cookie = await signInCookie(server, "admin", "admin-password-1");
    const idle0 = rssSampler(server.proc.pid!);
    await new Promise((r) => setTimeout(r, 500));
    const idleOnly = idle0.stop();
    const s0 = rssSampler(server.proc.pid!);
    const d = await throttledDownload(`${server.url}/api/backup/download?scope=full`, cookie, 64 * MiB);
    console.log(`Throttled download (64 MiB/s): ${fmtMiB(d.bytes)} in ${d.seconds.toFixed(1)} s; server RSS idle ${fmtMiB(idleOnly)}, peak ${fmtMiB(s0.stop())}`);
    await server.stop();
    return;
  }
  quietProofJob(dataDir);
  server = await startServer({ dataDir });
  cookie = await signInCookie(server, "admin", "admin-password-1");
  // Settle after start-up, so the backup is not measured against a cold server.
  await new Promise((r) => setTimeout(r, 1000));
  const backupIdleRss = await idleRss(server.proc.pid!);
  let sampler = rssSampler(server.proc.pid!);
  let t0 = performance.now();
  const res = await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } });
  const coffer = { seconds: (performance.now() - t0) / 1000, peakRss: sampler.stop() };
  const run = await res.json();
  expect(res.status, JSON.stringify(run)).toBe(201);
  const cofferOut = fs.statSync(path.join(dataDir, "backups", run.name)).size;
  await server.stop();

  const snap = path.join(WORK, "snap.db");
  const files = `-C ${WORK} snap.db -C ${dataDir} settings.yaml keys vault`;
  fs.rmSync(snap, { force: true });
  const tarGz = await measureShell(`sqlite3 ${dataDir}/coffer.db ".backup ${snap}" && tar czf ${WORK}/peer.tar.gz ${files}`);
  const tarGzOut = fs.statSync(`${WORK}/peer.tar.gz`).size;
  fs.rmSync(snap, { force: true });
  const gz1 = await measureShell(`sqlite3 ${dataDir}/coffer.db ".backup ${snap}" && tar cf - ${files} | gzip -1 > ${WORK}/peer1.tar.gz`);
  const gz1Out = fs.statSync(`${WORK}/peer1.tar.gz`).size;
  fs.rmSync(`${WORK}/peer.tar.gz`);
  fs.rmSync(`${WORK}/peer1.tar.gz`);
  fs.rmSync(snap, { force: true });

  // The server's memory while a slow client downloads a fresh full backup.
  quietProofJob(dataDir);
  server = await startServer({ dataDir });
  cookie = await signInCookie(server, "admin", "admin-password-1");
  const idleAtRest = await idleRss(server.proc.pid!);
  sampler = rssSampler(server.proc.pid!);
  t0 = performance.now();
  const dl = await throttledDownload(`${server.url}/api/backup/download?scope=full`, cookie, 64 * MiB);
  const dlPeak = sampler.stop();
  await server.stop();

  const row = (name: string, m: { seconds: number; peakRss: number }, out: number) => ({
    method: name,
    seconds: m.seconds.toFixed(1),
    "MiB/s in": (input / MiB / m.seconds).toFixed(0),
    "peak RSS": fmtMiB(m.peakRss),
    archive: fmtMiB(out),
  });
  console.log(`\nInput: ${fmtMiB(input)} (database ${fmtMiB(dbBytes)}, vault ${fmtMiB(vaultBytes)})\n`);
  table([
    row("Coffer full backup (server, to file, verified)", coffer, cofferOut),
    row("sqlite3 .backup + tar czf", tarGz, tarGzOut),
    row("sqlite3 .backup + tar | gzip -1", gz1, gz1Out),
  ]);
  console.log(`\nThrottled download (64 MiB/s): ${fmtMiB(dl.bytes)} in ${dl.seconds.toFixed(1)} s; server RSS idle ${fmtMiB(idleAtRest)}, peak ${fmtMiB(dlPeak)}`);
  console.log(`Back up now: server RSS idle ${fmtMiB(backupIdleRss)}, peak ${fmtMiB(coffer.peakRss)}`);
  console.log(`Coffer's run = writing ${(run.timings.writeMs / 1000).toFixed(1)} s + reading it back to verify ${(run.timings.verifyMs / 1000).toFixed(1)} s; the peers do not verify.`);
  console.log(`Ratio of Coffer's write alone / gzip -1 pipeline: ${(run.timings.writeMs / 1000 / gz1.seconds).toFixed(2)}\n`);
  const t = new Targets("backup");
  t.atMost("Coffer / gzip -1 pipeline", coffer.seconds / gz1.seconds, 0.55);
  t.atLeast("speed-up of Coffer over tar czf", tarGz.seconds / coffer.seconds, 1.5, "x");
  t.atMost("server peak during Back up now above idle", (coffer.peakRss - backupIdleRss) / MiB, 48, " MiB", 0);
  t.atMost("server peak during Back up now", coffer.peakRss / MiB, 200, " MiB", 0);
  t.atMost("server peak during a throttled download above idle", (dlPeak - idleAtRest) / MiB, 48, " MiB", 0);
  t.atMost("server peak during a throttled download", dlPeak / MiB, 200, " MiB", 0);
  t.check();
});
