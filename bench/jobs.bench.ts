import fs from "node:fs";
import path from "node:path";
import { spawn, execFileSync } from "node:child_process";
import { test } from "@playwright/test";
import { startServer, signInCookie, type Server } from "../e2e/support/server";
import { openInstance, closeInstance } from "../lib/instance";
import { runDoctor } from "../lib/doctor";
import { writeStoredBackup } from "../lib/backup/local/stored";
import { rssSampler, fmtMiB, MiB, table, quietProofJob } from "./support";
import { Targets, eventLoopDelay, percentile } from "./targets";

const WORK = path.resolve(process.env.BENCH_DIR ?? ".bench");
const ROOT = path.resolve(__dirname, "..");

/** This process's peak RSS above where it started, sampled every 20 ms while `work` runs. */
async function addedMemory<T>(work: () => Promise<T>): Promise<{ result: T; added: number }> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const result = await work();
    return { result, added: peak - base };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Small uploads at a steady rate (one commit each) until `until` settles or
 * `ms` pass; the latency of each, in milliseconds.
 */
async function uploadLatencies(server: Server, cookie: string, opts: { ms?: number; until?: Promise<unknown>; everyMs?: number; at?: number[] }): Promise<number[]> {
  const out: number[] = [];
  const start = performance.now();
  let done = false;
  opts.until?.finally(() => (done = true));
  const end = opts.ms ? Date.now() + opts.ms : Infinity;
  const body = Buffer.alloc(4096, 7);
  for (let i = 0; !done && Date.now() < end; i++) {
    const t0 = performance.now();
    const res = await fetch(`${server.url}/api/documents?name=latency-${Date.now()}-${i}.bin`, { method: "POST", headers: { cookie }, body: Buffer.concat([body, Buffer.from(String(i))]) });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`upload answered ${res.status}`);
    const took = performance.now() - t0;
    out.push(took);
    opts.at?.push((t0 - start) / 1000);
    await new Promise((r) => setTimeout(r, Math.max(0, (opts.everyMs ?? 50) - took)));
  }
  return out;
}

function cliBackup(dataDir: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), "--data-dir", dataDir, "backup", "--scope", "db"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => (code === 0 ? resolve((performance.now() - t0) / 1000) : reject(new Error(`coffer backup failed (${code}): ${err}`))));
  });
}

// Runs after backup.bench.ts, on its dataset.
test("jobs off the event loop: deep check and Back up now; uploads during a backup; a CLI backup under writes", async () => {
  const dataDir = path.join(WORK, "data");
  test.skip(!fs.existsSync(path.join(WORK, "dataset.json")), "run backup.bench.ts first: it makes the dataset");
  const t = new Targets("jobs");

  // The same code the server runs, in this process, where its event loop can be watched directly.
  const inst = openInstance(dataDir);
  const deep = await addedMemory(() => eventLoopDelay(() => runDoctor(inst, { deep: true })));
  const backup = await addedMemory(() => eventLoopDelay(() => writeStoredBackup(inst, { scope: "full", trigger: "manual" })));
  closeInstance(inst);
  console.log("\nEvent-loop delay (ms), measured in-process:\n");
  table([
    { job: "deep check (every blob hashed)", p50: deep.result.p50.toFixed(1), p99: deep.result.p99.toFixed(1), max: deep.result.max.toFixed(1), "memory added": fmtMiB(deep.added) },
    { job: "Back up now (full, written and verified)", p50: backup.result.p50.toFixed(1), p99: backup.result.p99.toFixed(1), max: backup.result.max.toFixed(1), "memory added": fmtMiB(backup.added) },
  ]);
  console.log("");
  t.atMost("event-loop delay p99 during a deep check", deep.result.p99, 50, " ms", 1);
  t.atMost("event-loop delay p99 during Back up now", backup.result.p99, 50, " ms", 1);
  t.atMost("memory a deep check adds", deep.added / MiB, 48, " MiB", 0);

  // Through the server: upload latency while Back up now runs, against idle; the server's memory meanwhile.
  quietProofJob(dataDir);
  const server = await startServer({ dataDir });
  const cookie = await signInCookie(server, "admin", "admin-password-1");
  await uploadLatencies(server, cookie, { ms: 2_000 }); // warm up
  // Idle means idle: the in-process backup above left a gigabyte of writeback behind.
  execFileSync("sync");
  const idleSampler = rssSampler(server.proc.pid!);
  // As long as a Back up now takes here (about 35 s), so that both p99s come from as many samples.
  const idle = await uploadLatencies(server, cookie, { ms: 35_000 });
  const idleRss = idleSampler.stop();
  const sampler = rssSampler(server.proc.pid!);
  const run = fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } }).then(async (r) => {
    if (r.status !== 201) throw new Error(`Back up now answered ${r.status}: ${await r.text()}`);
  });
  const at: number[] = [];
  const during = await uploadLatencies(server, cookie, { until: run, at });
  await run;
  const peak = sampler.stop();
  console.log(`\nUploads of 4 KiB every 50 ms: idle p50 ${percentile(idle, 50).toFixed(1)} ms, p99 ${percentile(idle, 99).toFixed(1)} ms (${idle.length}); during Back up now p50 ${percentile(during, 50).toFixed(1)} ms, p99 ${percentile(during, 99).toFixed(1)} ms (${during.length})`);
  const slowest = during.map((ms, i) => ({ ms, at: at[i] })).sort((a, b) => b.ms - a.ms).slice(0, 8);
  console.log(`Slowest during Back up now: ${slowest.map((s) => `${s.ms.toFixed(0)} ms at +${s.at.toFixed(1)} s`).join(", ")}`);
  console.log(`Server RSS: idle ${fmtMiB(idleRss)}, peak during Back up now ${fmtMiB(peak)}\n`);
  t.atMost("upload p99 during Back up now / idle", percentile(during, 99) / percentile(idle, 99), 2);
  t.atMost("server peak during Back up now above idle", (peak - idleRss) / MiB, 48, " MiB", 0);
  t.atMost("server peak during Back up now", peak / MiB, 200, " MiB", 0);

  // coffer backup from cron while the server commits a write every 50 ms.
  const cliIdle = await cliBackup(dataDir);
  const writes = new AbortController();
  const writing = uploadLatencies(server, cookie, { until: new Promise((r) => writes.signal.addEventListener("abort", r)) });
  const cliBusy = await cliBackup(dataDir);
  writes.abort();
  const commits = (await writing).length;
  await server.stop();
  console.log(`\ncoffer backup --scope db: idle ${cliIdle.toFixed(1)} s, while the server commits every 50 ms ${cliBusy.toFixed(1)} s (${commits} commits meanwhile)\n`);
  t.atMost("CLI backup under writes / idle", cliBusy / cliIdle, 1.5);
  t.check();
});
