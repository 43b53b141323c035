import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { execSync } from "node:child_process";
import { test, expect } from "@playwright/test";
import { startServer, signInCookie, SETUP_CODE, type Server } from "../e2e/support/server";
import { startS3 } from "../e2e/support/s3";
import { currentSettings, saveSettings } from "../lib/settings/store";
import { benchSettings, rssSampler, idleRss, measureShell, ensureTools, vaultInstance, fmtMiB, MiB, table, quietProofJob } from "./support";
import { Targets } from "./targets";

const WORK = path.resolve(process.env.BENCH_DIR ?? ".bench");

// Runs after backup.bench.ts, on its dataset.
test("offsite: Coffer to and from an S3 server against aws s3 sync", async () => {
  test.skip(!fs.existsSync(path.join(WORK, "dataset.json")), "run backup.bench.ts first: it makes the dataset");
  ensureTools({ aws: "awscli", sqlite3: "sqlite3" });
  const s3 = await startS3("coffer-bench", "peer-bench");
  const servers: Server[] = [];
  try {
    const dataDir = path.join(WORK, "offsite-data");
    vaultInstance(path.join(WORK, "data"), dataDir);
    // Continuous protection off: it would follow the bucket too, beside the backup measured here (continuous.bench.ts measures it).
    benchSettings(dataDir, s3, { offsite: true, continuous: false });
    const inputBytes = Number(execSync(`du -sb --apparent-size ${dataDir}/vault ${dataDir}/coffer.db | awk '{s+=$1} END {print s}'`).toString());

    // The peer: what a user would script, aws s3 sync of the data directory (its state files, not a consistent snapshot).
    // Debian's aws, the one ensureTools checked for: a machine may have another first on PATH (this one has a
    // pyenv shim for aws-cli 1.45), and the peer should be the same program from run to run.
    const aws = `AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 AWS_REQUEST_CHECKSUM_CALCULATION=when_required /usr/bin/aws --endpoint-url ${s3.endpoint}`;
    const syncUp = await measureShell(`${aws} s3 sync --quiet ${dataDir} s3://peer-bench/peer/ --exclude 'backups/*' --exclude '.*'`);

    quietProofJob(dataDir);
    let server = await startServer({ dataDir });
    servers.push(server);
    let cookie = await signInCookie(server, "admin", "admin-password-1");
    await new Promise((r) => setTimeout(r, 1000));
    const idle = await idleRss(server.proc.pid!);
    const run = async () => {
      const sampler = rssSampler(server.proc.pid!);
      const res = await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } });
      const body = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(201);
      expect(body.offsite, JSON.stringify(body)).toMatchObject({ ok: true });
      return { ...body.offsite, peakRss: sampler.stop() } as { uploaded: number; skipped: number; bytes: number; snapshot_bytes: number; seconds: number; peakRss: number };
    };
    // For reference: the same job with offsite off (the local archive alone).
    const settingsFile = path.join(dataDir, "settings.yaml");
    const withOffsite = currentSettings(settingsFile);
    saveSettings(settingsFile, { ...withOffsite, backup: { ...withOffsite.backup, offsite: { ...withOffsite.backup.offsite, enabled: false } } });
    const localSampler = rssSampler(server.proc.pid!);
    const local = await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } });
    expect(local.status).toBe(201);
    const localPeak = localSampler.stop();
    saveSettings(settingsFile, withOffsite);
    await new Promise((r) => setTimeout(r, 1100));
    const first = await run();
    // 1% of the documents change: one new 11 MiB document among about a hundred.
    const changed = crypto.randomBytes(11 * MiB);
    const up = await fetch(`${server.url}/api/documents?name=changed.jpg`, { method: "POST", headers: { cookie }, body: changed });
    expect(up.status).toBe(201);
    await new Promise((r) => setTimeout(r, 1100));
    const second = await run();
    await server.stop();

    // Restore a fresh server from the bucket (the wizard's API) against aws s3 sync down plus a copy into place.
    const down = path.join(WORK, "offsite-peer-down");
    const placed = path.join(WORK, "offsite-peer-placed");
    fs.rmSync(down, { recursive: true, force: true });
    fs.rmSync(placed, { recursive: true, force: true });
    const syncDown = await measureShell(`${aws} s3 sync --quiet s3://peer-bench/peer/ ${down} && cp -a ${down} ${placed}`);
    fs.rmSync(down, { recursive: true, force: true });
    fs.rmSync(placed, { recursive: true, force: true });

    const fresh = path.join(WORK, "offsite-restored");
    fs.rmSync(fresh, { recursive: true, force: true });
    server = await startServer({ dataDir: fresh });
    servers.push(server);
    await new Promise((r) => setTimeout(r, 1000));
    const restoreIdle = await idleRss(server.proc.pid!);
    const sampler = rssSampler(server.proc.pid!);
    const t0 = performance.now();
    const connection = { endpoint: s3.endpoint, bucket: s3.bucket, prefix: "coffer", access_key_id: "S3RVER", secret_access_key: "S3RVER" };
    const staged = await fetch(`${server.url}/api/setup/offsite/restore`, {
      method: "POST",
      headers: { "x-setup-token": SETUP_CODE, "content-type": "application/json" },
      body: JSON.stringify({ connection }),
    });
    const preview = await staged.json();
    expect(staged.status, JSON.stringify(preview)).toBe(201);
    const t1 = performance.now();
    const applied = await fetch(`${server.url}/api/restore/${preview.id}/apply`, { method: "POST", headers: { "x-setup-token": SETUP_CODE } });
    expect(applied.status, await applied.clone().text()).toBe(200);
    const restore = { seconds: (performance.now() - t0) / 1000, peakRss: sampler.stop() };
    await server.stop();
    fs.rmSync(fresh, { recursive: true, force: true });
    cookie = "";

    console.log(`\nInput: ${fmtMiB(inputBytes)} (vault and database; plain, on s3rver over loopback)\n`);
    table([
      { method: "Coffer first offsite backup (server)", seconds: first.seconds.toFixed(1), sent: fmtMiB(first.bytes), "peak RSS": fmtMiB(first.peakRss) },
      { method: "aws s3 sync up", seconds: syncUp.seconds.toFixed(1), sent: fmtMiB(inputBytes), "peak RSS": fmtMiB(syncUp.peakRss) },
      { method: "Coffer second backup (1% changed)", seconds: second.seconds.toFixed(1), sent: fmtMiB(second.bytes), "peak RSS": fmtMiB(second.peakRss) },
      { method: "Coffer restore from the bucket (stage + apply)", seconds: restore.seconds.toFixed(1), sent: "", "peak RSS": fmtMiB(restore.peakRss) },
      { method: "aws s3 sync down + cp -a into place", seconds: syncDown.seconds.toFixed(1), sent: "", "peak RSS": fmtMiB(syncDown.peakRss) },
    ]);
    console.log(`\nThe same job with offsite off (local archive only): server peak ${fmtMiB(localPeak)}`);
    console.log(`First: ${first.uploaded} document files uploaded; second: ${second.uploaded} uploaded, ${second.skipped} skipped; snapshot ${fmtMiB(second.snapshot_bytes)}`);
    console.log(`Restore: fetch and stage ${((t1 - t0) / 1000).toFixed(1)} s, apply ${((performance.now() - t1) / 1000).toFixed(1)} s; server idle ${fmtMiB(restoreIdle)} (Back up now idle ${fmtMiB(idle)})\n`);
    const t = new Targets("offsite");
    t.atMost("first offsite backup / aws s3 sync", first.seconds / syncUp.seconds, 1.2);
    t.atMost("second backup's bytes sent / (changed bytes + snapshot)", second.bytes / (changed.length + second.snapshot_bytes), 1.05);
    t.atMost("second backup's time / first", second.seconds / first.seconds, 0.1);
    t.atMost("restore from the bucket / (aws s3 sync down + copy)", restore.seconds / syncDown.seconds, 1.3);
    t.atMost("server peak during offsite backups", Math.max(first.peakRss, second.peakRss) / MiB, 200, " MiB", 0);
    t.atMost("server peak during a restore from the bucket", restore.peakRss / MiB, 200, " MiB", 0);
    t.check();
  } finally {
    for (const srv of servers) await srv.stop().catch(() => {});
    await s3.close();
  }
});
