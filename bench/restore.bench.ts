import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { test, expect } from "@playwright/test";
import { startServer, SETUP_CODE } from "../e2e/support/server";
import { rssSampler, idleRss, measureShell, fmtMiB, MiB, table } from "./support";
import { Targets } from "./targets";

const WORK = path.resolve(process.env.BENCH_DIR ?? ".bench");

// Runs after backup.bench.ts, on the archive it stored.
test("restore: Coffer (upload, validate, apply) against tar xzf", async () => {
  const backups = path.join(WORK, "data", "backups");
  const name = fs.existsSync(backups) ? fs.readdirSync(backups).find((n) => n.startsWith("coffer_full_") && n.endsWith(".tar.gz")) : undefined;
  test.skip(!name, "run backup.bench.ts first: it makes the dataset and the archive");
  const archive = path.join(backups, name!);
  const size = fs.statSync(archive).size;

  const out = path.join(WORK, "untar");
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  const tar = await measureShell(`tar xzf ${archive} -C ${out}`);
  fs.rmSync(out, { recursive: true, force: true });

  const dataDir = path.join(WORK, "restored");
  fs.rmSync(dataDir, { recursive: true, force: true });
  const server = await startServer({ dataDir });
  await new Promise((r) => setTimeout(r, 1000));
  const idleAtRest = await idleRss(server.proc.pid!);
  const sampler = rssSampler(server.proc.pid!);
  const t0 = performance.now();
  const staged = await fetch(`${server.url}/api/setup/restore`, {
    method: "POST",
    headers: { "x-setup-token": SETUP_CODE, "content-type": "application/gzip", "content-length": String(size) },
    body: Readable.toWeb(fs.createReadStream(archive, { highWaterMark: MiB })) as ReadableStream,
    duplex: "half",
  } as RequestInit);
  const preview = await staged.json();
  expect(staged.status, JSON.stringify(preview)).toBe(201);
  const t1 = performance.now();
  const applied = await fetch(`${server.url}/api/restore/${preview.id}/apply`, { method: "POST", headers: { "x-setup-token": SETUP_CODE } });
  expect(applied.status, await applied.clone().text()).toBe(200);
  const t2 = performance.now();
  const coffer = { seconds: (t2 - t0) / 1000, peakRss: sampler.stop() };
  await server.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });

  console.log(`\nArchive: ${fmtMiB(size)}\n`);
  table([
    { method: "Coffer restore over HTTP (stage + validate + apply)", seconds: coffer.seconds.toFixed(1), "peak RSS": fmtMiB(coffer.peakRss) },
    { method: "tar xzf", seconds: tar.seconds.toFixed(1), "peak RSS": fmtMiB(tar.peakRss) },
  ]);
  console.log(`\nUpload and validation ${((t1 - t0) / 1000).toFixed(1)} s, apply ${((t2 - t1) / 1000).toFixed(1)} s`);
  console.log(`Server RSS idle ${fmtMiB(idleAtRest)}, peak ${fmtMiB(coffer.peakRss)}\n`);
  const t = new Targets("restore");
  t.atMost("Coffer restore / tar xzf", coffer.seconds / tar.seconds, 1.0);
  t.atMost("server peak during a restore above idle", (coffer.peakRss - idleAtRest) / MiB, 48, " MiB", 0);
  t.atMost("server peak during a restore", coffer.peakRss / MiB, 200, " MiB", 0);
  t.check();
});
