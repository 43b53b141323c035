import fs from "node:fs";
import path from "node:path";
import { it } from "vitest";
import { openInstance, closeInstance } from "@/lib/instance";
import { openRepository, pushOffsite } from "@/lib/backup/offsite";
import { snapshotDatabase } from "@/lib/backup/snapshot";
import { startS3 } from "../e2e/support/s3";

it("mem", async () => {
  const s3 = await startS3("coffer-bench");
  const inst = openInstance(path.resolve(".bench/offsite-data"));
  fs.writeFileSync(inst.paths.instanceId, "00000000-0000-4000-8000-000000000000\n");
  const repo = openRepository({ endpoint: s3.endpoint, region: "us-east-1", bucket: "coffer-bench", prefix: "coffer", pathStyle: true, accessKeyId: "S3RVER", secretAccessKey: "S3RVER", checksumCompat: true });
  const work = fs.mkdtempSync(path.join(inst.paths.tmp, "s-"));
  const m0 = process.memoryUsage();
  let peak = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  const t = setInterval(() => { const m = process.memoryUsage(); for (const k of Object.keys(peak) as (keyof typeof peak)[]) peak[k] = Math.max(peak[k], m[k]); }, 50);
  const snap = await snapshotDatabase(inst, work);
  let blobPeak = "";
  const r = await pushOffsite(inst, repo, { scope: "full", trigger: "manual", dbSnapshot: snap, onProgress: (d, t) => { if (d === t) blobPeak = JSON.stringify(Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round(v / 1048576)]))); } });
  console.log("blob phase peak", blobPeak);
  clearInterval(t);
  const f = (n: number) => (n / 1048576).toFixed(0);
  console.log("start", f(m0.rss), f(m0.heapUsed), f(m0.external), f(m0.arrayBuffers), "peak", f(peak.rss), f(peak.heapUsed), f(peak.external), f(peak.arrayBuffers), r.seconds.toFixed(1));
  closeInstance(inst); await s3.close();
}, 600000);
