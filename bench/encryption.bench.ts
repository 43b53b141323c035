import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { test, expect } from "@playwright/test";
import { startServer, signInCookie, SETUP_CODE, type Server } from "../e2e/support/server";
import { openInstance, closeInstance } from "../lib/instance";
import { writeStoredBackup } from "../lib/backup/local/stored";
import { generateKey } from "../lib/crypto/age";
import { rssSampler, idleRss, fmtMiB, MiB, table, quietProofJob } from "./support";
import { Targets, eventLoopDelay } from "./targets";

const WORK = path.resolve(process.env.BENCH_DIR ?? ".bench");

/** Set backup.encryption in settings.yaml (the server reloads it on its own). */
function setEncryption(dataDir: string, recipient: string | null) {
  const file = path.join(dataDir, "settings.yaml");
  const text = fs.readFileSync(file, "utf8").replace(/\n {2}encryption:\n(?: {4}.*\n| {6}.*\n)*/, "\n");
  const block = recipient ? `  encryption:\n    mode: recipients\n    recipients:\n      - ${recipient}\n    passphrase: null\n` : "";
  fs.writeFileSync(file, text.replace(/^backup:\n/m, `backup:\n${block}`));
}

async function backUpNow(server: Server, cookie: string) {
  const idle = await idleRss(server.proc.pid!);
  const sampler = rssSampler(server.proc.pid!);
  const t0 = performance.now();
  const res = await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } });
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(201);
  return { seconds: (performance.now() - t0) / 1000, peak: sampler.stop(), idleRss: idle, name: body.name as string };
}

async function restoreOver(file: string, headers: Record<string, string>) {
  const dataDir = path.join(WORK, "restored-enc");
  fs.rmSync(dataDir, { recursive: true, force: true });
  quietProofJob(dataDir);
  const server = await startServer({ dataDir });
  const t0 = performance.now();
  const sampler = rssSampler(server.proc.pid!);
  const staged = await fetch(`${server.url}/api/setup/restore`, {
    method: "POST",
    headers: { "x-setup-token": SETUP_CODE, "content-length": String(fs.statSync(file).size), ...headers },
    body: Readable.toWeb(fs.createReadStream(file, { highWaterMark: MiB })) as ReadableStream,
    duplex: "half",
  } as RequestInit);
  const preview = await staged.json();
  expect(staged.status, JSON.stringify(preview)).toBe(201);
  const applied = await fetch(`${server.url}/api/restore/${preview.id}/apply`, { method: "POST", headers: { "x-setup-token": SETUP_CODE } });
  expect(applied.status).toBe(200);
  const result = { seconds: (performance.now() - t0) / 1000, peak: sampler.stop() };
  await server.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return result;
}

// Runs after backup.bench.ts, on its dataset.
test("encryption: encrypted Back up now and restore against plain, side by side", async () => {
  const dataDir = path.join(WORK, "data");
  test.skip(!fs.existsSync(path.join(WORK, "dataset.json")), "run backup.bench.ts first: it makes the dataset");
  const key = generateKey();
  const backups = path.join(dataDir, "backups");
  for (const f of fs.readdirSync(backups)) fs.rmSync(path.join(backups, f));
  const t = new Targets("encryption");
  try {
    // Each on a fresh server, so both start from the same idle memory.
    quietProofJob(dataDir);
    let server = await startServer({ dataDir });
    let cookie = await signInCookie(server, "admin", "admin-password-1");
    const plain = await backUpNow(server, cookie);
    await server.stop();
    setEncryption(dataDir, key.recipient);
    quietProofJob(dataDir);
    server = await startServer({ dataDir });
    cookie = await signInCookie(server, "admin", "admin-password-1");
    const encrypted = await backUpNow(server, cookie);
    expect(encrypted.name).toMatch(/\.age$/);
    await server.stop();

    // The encrypted backup in this process, where its event loop can be watched.
    const inst = openInstance(dataDir);
    const eld = await eventLoopDelay(() => writeStoredBackup(inst, { scope: "full", trigger: "manual" }));
    closeInstance(inst);

    const plainRestore = await restoreOver(path.join(backups, plain.name), {});
    const encRestore = await restoreOver(path.join(backups, encrypted.name), { "x-coffer-identity": key.identity });

    console.log("");
    table([
      { run: "Back up now, plain", seconds: plain.seconds.toFixed(1), "peak RSS": fmtMiB(plain.peak), "idle RSS": fmtMiB(plain.idleRss) },
      { run: "Back up now, encrypted (age, X25519)", seconds: encrypted.seconds.toFixed(1), "peak RSS": fmtMiB(encrypted.peak), "idle RSS": fmtMiB(encrypted.idleRss) },
      { run: "Restore over HTTP, plain", seconds: plainRestore.seconds.toFixed(1), "peak RSS": fmtMiB(plainRestore.peak), "idle RSS": "" },
      { run: "Restore over HTTP, encrypted", seconds: encRestore.seconds.toFixed(1), "peak RSS": fmtMiB(encRestore.peak), "idle RSS": "" },
    ]);
    console.log(`\nEncrypted backup in-process: event-loop delay p50 ${eld.p50.toFixed(1)} ms, p99 ${eld.p99.toFixed(1)} ms, max ${eld.max.toFixed(1)} ms\n`);
    t.atMost("encrypted / plain Back up now", encrypted.seconds / plain.seconds, 1.1);
    t.atMost("encrypted / plain restore", encRestore.seconds / plainRestore.seconds, 1.1);
    t.atMost("server peak during an encrypted backup", encrypted.peak / MiB, 200, " MiB", 0);
    t.atMost("server peak during an encrypted restore", encRestore.peak / MiB, 200, " MiB", 0);
    t.atMost("event-loop delay p99 during an encrypted backup", eld.p99, 50, " ms", 1);
  } finally {
    setEncryption(dataDir, null);
  }
  t.check();
});
