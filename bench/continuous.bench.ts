import fs from "node:fs";
import path from "node:path";
import { test } from "@playwright/test";
import { startServer, signInCookie, type Server } from "../e2e/support/server";
import { startS3 } from "../e2e/support/s3";
import { openInstance, closeInstance } from "../lib/instance";
import { localReplicaFiles } from "../lib/continuous/offsite";
import { readOffsiteState } from "../lib/continuous/offsite-state";
import { stageOffsitePointInTime } from "../lib/continuous/offsite-restore";
import { stageOffsiteSnapshot } from "../lib/backup/offsite/pull";
import { pushOffsite } from "../lib/backup/offsite/push";
import { closeRepository, openRepository } from "../lib/backup/offsite/repository";
import { snapshotDatabase } from "../lib/backup/format/db-snapshot";
import { discardStaged } from "../lib/backup/restore/staging";
import { benchSettings, idleRss, rssSampler, vaultInstance, fmtMiB, MiB, table, quietProofJob } from "./support";
import { Targets, percentile } from "./targets";

const WORK = path.resolve(process.env.BENCH_DIR ?? ".bench");
const litestream = path.resolve(__dirname, "../node_modules/@flydotio/litestream-linux-x64/litestream");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Small uploads every 50 ms for `ms` (jobs.bench.ts's load): each one's latency, and when each was answered (epoch ms). */
async function steadyUploads(server: Server, cookie: string, ms: number): Promise<{ latency: number[]; doneAt: number[]; bytes: number }> {
  const latency: number[] = [];
  const doneAt: number[] = [];
  let bytes = 0;
  const end = Date.now() + ms;
  const body = Buffer.alloc(4096, 7);
  for (let i = 0; Date.now() < end; i++) {
    const t0 = performance.now();
    const payload = Buffer.concat([body, Buffer.from(`${Date.now()}-${i}`)]);
    const res = await fetch(`${server.url}/api/documents?name=steady-${Date.now()}-${i}.bin`, { method: "POST", headers: { cookie }, body: payload });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`upload answered ${res.status}`);
    const took = performance.now() - t0;
    latency.push(took);
    doneAt.push(Date.now());
    bytes += payload.length;
    await sleep(Math.max(0, 50 - took));
  }
  return { latency, doneAt, bytes };
}

/** What the server's shipper last recorded (<data>/.continuous/offsite.json). */
const shippedIn = (dataDir: string) => () => readOffsiteState({ paths: { root: dataDir } } as Parameters<typeof readOffsiteState>[0]);

const replicaBytes = async (replica: string) => (await localReplicaFiles(replica)).reduce((a, f) => a + f.size, 0);

// Runs after backup.bench.ts, on its dataset (its 1 GiB vault, the instance's own small database).
test("continuous protection: uploads on and off, lag to the replica and the bucket, bytes sent, restore to a point in time", async () => {
  test.skip(!fs.existsSync(path.join(WORK, "dataset.json")), "run backup.bench.ts first: it makes the dataset");
  test.skip(!fs.existsSync(litestream) && !process.env.COFFER_LITESTREAM, "no Litestream binary");
  test.setTimeout(20 * 60_000);
  const t = new Targets("continuous");
  const s3 = await startS3("coffer-bench");
  const servers: Server[] = [];
  const dataDir = path.join(WORK, "continuous-data");
  const shipped = shippedIn(dataDir);
  try {
    vaultInstance(path.join(WORK, "data"), dataDir);
    quietProofJob(dataDir);
    const configure = (continuous: boolean) => benchSettings(dataDir, s3, { offsite: true, continuous });
    const LOAD_MS = 30_000;

    // Off: the same server and load, continuous protection off.
    configure(false);
    const off = await startServer({ dataDir });
    servers.push(off);
    let cookie = await signInCookie(off, "admin", "admin-password-1");
    await steadyUploads(off, cookie, 2000);
    const offSampler = rssSampler(off.proc.pid!);
    const idle = await steadyUploads(off, cookie, LOAD_MS);
    const offPeak = offSampler.stop();
    await off.stop();
    servers.pop();

    // On, following the bucket: first everything the bucket lacks (the vault), then the same load.
    configure(true);
    const on = await startServer({ dataDir });
    servers.push(on);
    cookie = await signInCookie(on, "admin", "admin-password-1");
    const boot = Date.now();
    // The default backup directory's replica (the dataset does not move it).
    const replica = path.join(dataDir, "backups", "continuous");
    for (;;) {
      const st = shipped();
      if (st?.last_restorable_at && st.pending === 0 && !st.error) break;
      if (Date.now() - boot > 10 * 60_000) throw new Error(`the bucket never caught up: ${JSON.stringify(st)}\n${on.logs().slice(-2000)}`);
      await sleep(250);
    }
    const firstShip = (Date.now() - boot) / 1000;
    const afterFirstCopy = await idleRss(on.proc.pid!);
    await steadyUploads(on, cookie, 2000);
    await sleep(7000);
    const state0 = shipped()!;
    const replica0 = await replicaBytes(replica);
    // When the bucket's newest second passed each value: sampled from the state the shipper writes.
    const seen: { at: number; last: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const st = shipped();
        seen.push({ at: Date.now(), last: st?.last_restorable_at ? Date.parse(st.last_restorable_at) : 0 });
        await sleep(100);
      }
    })();
    const rss = rssSampler(on.proc.pid!);
    const litestreamPid = Number(fs.readFileSync(path.join(dataDir, ".continuous", "litestream.pid"), "utf8"));
    const litestreamRss = rssSampler(litestreamPid);
    const loadStart = Date.now();
    const busy = await steadyUploads(on, cookie, LOAD_MS);
    const loadEnd = Date.now();
    await sleep(15_000); // the last uploads' way to the bucket
    const peak = rss.stop();
    const litestreamPeak = litestreamRss.stop();
    sampling = false;
    await sampler;
    const state1 = shipped()!;
    const replica1 = await replicaBytes(replica);
    const mtimes = (await localReplicaFiles(replica)).filter((f) => f.kind !== "settings").map((f) => f.mtimeMs).sort((a, b) => a - b);
    // An upload is in the local replica when the first replica file written after its answer is; in the bucket when its newest second reaches that file.
    const localLag: number[] = [];
    const bucketLag: number[] = [];
    for (const done of busy.doneAt) {
      const file = mtimes.find((m) => m >= done);
      if (file === undefined) throw new Error("an upload never reached the local replica");
      localLag.push((file - done) / 1000);
      const arrived = seen.find((s) => s.last >= file);
      if (!arrived) throw new Error("an upload never reached the bucket");
      bucketLag.push((arrived.at - done) / 1000);
    }
    const sent = state1.bytes_sent - state0.bytes_sent;
    const written = busy.bytes + (replica1 - replica0);
    const hours = (loadEnd - loadStart + 15_000) / 3600_000;
    await on.stop();
    servers.pop();

    // Restores from the bucket of the same data: the continuous copy at its newest second, and a snapshot taken of the same database.
    const inst = openInstance(dataDir);
    const at = new Date(Date.parse(state1.last_restorable_at!));
    const repo = openRepository({ endpoint: s3.endpoint, region: "us-east-1", bucket: s3.bucket, prefix: "coffer", pathStyle: true, accessKeyId: "S3RVER", secretAccessKey: "S3RVER", checksumCompat: true });
    const work = fs.mkdtempSync(path.join(inst.paths.tmp, "bench-"));
    await pushOffsite(inst, repo, { scope: "full", trigger: "manual", dbSnapshot: await snapshotDatabase(inst, work) });
    fs.rmSync(work, { recursive: true, force: true });
    closeInstance(inst);
    const freshDir = path.join(WORK, "continuous-fresh");
    const timed = async (stage: (i: ReturnType<typeof openInstance>) => Promise<{ id: string }>) => {
      fs.rmSync(freshDir, { recursive: true, force: true });
      const fresh = openInstance(freshDir);
      try {
        const t0 = performance.now();
        const p = await stage(fresh);
        const s = (performance.now() - t0) / 1000;
        discardStaged(fresh, p.id);
        return s;
      } finally {
        closeInstance(fresh);
      }
    };
    const plain = await timed((fresh) => stageOffsiteSnapshot(fresh, repo, null));
    const pitr = await timed((fresh) => stageOffsitePointInTime(fresh, repo, at));
    closeRepository(repo);

    console.log(`\nSteady uploads of 4 KiB every 50 ms for ${LOAD_MS / 1000} s, the server on ${path.basename(WORK)}'s vault; the bucket is s3rver on this machine (first copy of the vault: ${firstShip.toFixed(0)} s):\n`);
    table([
      { "": "upload p50", off: `${percentile(idle.latency, 50).toFixed(1)} ms`, on: `${percentile(busy.latency, 50).toFixed(1)} ms` },
      { "": "upload p99", off: `${percentile(idle.latency, 99).toFixed(1)} ms`, on: `${percentile(busy.latency, 99).toFixed(1)} ms` },
      { "": "uploads", off: idle.latency.length, on: busy.latency.length },
      { "": "server peak RSS (with Litestream)", off: fmtMiB(offPeak), on: fmtMiB(peak) },
      { "": "of which Litestream", off: "-", on: fmtMiB(litestreamPeak) },
      { "": "server RSS at rest after the first copy", off: "-", on: fmtMiB(afterFirstCopy) },
      { "": "lag to the local replica p50 / p99", off: "-", on: `${percentile(localLag, 50).toFixed(2)} / ${percentile(localLag, 99).toFixed(2)} s` },
      { "": "lag to the bucket p50 / p99", off: "-", on: `${percentile(bucketLag, 50).toFixed(2)} / ${percentile(bucketLag, 99).toFixed(2)} s` },
      { "": "sent to the bucket an hour", off: "-", on: `${fmtMiB(sent / hours)} (${Math.round((state1.objects_sent - state0.objects_sent) / hours)} uploads)` },
      { "": "written an hour (documents + replica)", off: "-", on: fmtMiB(written / hours) },
      { "": "restore from the bucket: snapshot / point in time", off: "-", on: `${plain.toFixed(1)} s / ${pitr.toFixed(1)} s` },
    ]);
    console.log("");
    t.atMost("upload p99 continuous on / off", percentile(busy.latency, 99) / percentile(idle.latency, 99), 1.2);
    t.atMost("replication lag p99 to the local replica", percentile(localLag, 99), 2, " s", 2);
    t.atMost("replication lag p99 to the bucket", percentile(bucketLag, 99), 10, " s", 2);
    t.atMost("bytes sent offsite / bytes written (documents + WAL)", sent / written, 1.2);
    t.atMost("restore to a point in time / restore of a snapshot (bucket)", pitr / plain, 1.3);
    t.atMost("server peak RSS with Litestream", peak / MiB, 250, " MiB", 0);
    t.check();
  } finally {
    for (const s of servers) await s.stop().catch(() => {});
    await s3.close();
  }
});
