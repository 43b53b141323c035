// The hostile-bucket catalogue: every way a bucket (whoever can write it, or a broken store) attacks,
// against every entry point that reads from one: the wizard and Settings restore, `coffer restore --from`,
// `coffer export`, the restore drill and a verification slice. Each cell asserts the specific refusal,
// nothing written outside staging, nothing left in staging, the instance unchanged, and a bounded time.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import type { AddressInfo } from "node:net";
import { PutObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDocument } from "@/lib/vault/documents";
import { closeInstance, type Instance } from "@/lib/instance";
import { snapshotDatabase } from "@/lib/backup/format/db-snapshot";
import { closeRepository, configuredRepository, openRepository } from "@/lib/backup/offsite/repository";
import { pushOffsite } from "@/lib/backup/offsite/push";
import { stageOffsiteSnapshot } from "@/lib/backup/offsite/pull";
import { s3Client } from "@/lib/backup/offsite/s3";
import type { S3Location } from "@/lib/backup/offsite/location";
import { runDrill } from "@/lib/backup/proof/drill";
import { verifySlice } from "@/lib/backup/proof/verify";
import { makeSetUpInstance, tempDir } from "../../support/instance";
import { startS3, configureOffsite, S3RVER_KEY, type TestS3 } from "../../support/s3";
import { startFaultProxy, type FaultProxy } from "../../support/fault-proxy";
import { withDatabase } from "../../support/hostile";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const STALL_MS = 1000;
let s3: TestS3;
const cleanups: (() => void | Promise<void>)[] = [];
beforeAll(async () => {
  s3 = await startS3();
  process.env.COFFER_OFFSITE_STALL_MS = String(STALL_MS);
});
afterAll(async () => {
  delete process.env.COFFER_OFFSITE_STALL_MS;
  for (const c of cleanups.splice(0).reverse()) await c();
  await s3.close();
});

/** A repository with one honest full snapshot of two documents; returns how to read and write its objects. */
async function honestBucket(prefix: string) {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  for (let i = 0; i < 2; i++) await createDocument(t.inst, t.admin, null, { name: `doc-${i}.bin`, body: Readable.from([Buffer.from(`document ${i} `.repeat(4000))]), maxBytes: 1e9 });
  const loc = await s3.location(prefix);
  const repo = openRepository(loc);
  const work = fs.mkdtempSync(path.join(t.inst.paths.tmp, "t-"));
  const pushed = await pushOffsite(t.inst, repo, { scope: "full", trigger: "manual", dbSnapshot: await snapshotDatabase(t.inst, work), now: new Date("2026-12-01T03:00:00Z") });
  closeRepository(repo);
  fs.rmSync(work, { recursive: true, force: true });
  const client = s3Client(loc);
  cleanups.push(() => client.destroy());
  const key = (k: string) => `${loc.prefix}/${k}`;
  const get = async (k: string) => Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: key(k) }))).Body!.transformToByteArray());
  const put = (k: string, body: Buffer) => client.send(new PutObjectCommand({ Bucket: loc.bucket, Key: key(k), Body: body }));
  return { loc, name: pushed.snapshot, get, put };
}


/** Put a crafted snapshot as the newest in the bucket, with an index that makes it look complete. */
async function plantNewest(b: Awaited<ReturnType<typeof honestBucket>>, name: string, archive: Buffer, index: Record<string, unknown> = {}) {
  await b.put(`snapshots/${name}`, archive);
  const honest = JSON.parse((await b.get(`indexes/${b.name}.json`)).toString());
  await b.put(`indexes/${name}.json`, Buffer.from(JSON.stringify({ ...honest, snapshot: name, snapshot_bytes: archive.length, ...index })));
}

/** A store that says "more" on every listing page, forever. */
async function endlessLister(): Promise<string> {
  let n = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    n++;
    res.writeHead(200, { "content-type": "application/xml" });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>t${n}</NextContinuationToken></ListBucketResult>`,
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Case {
  name: string;
  /** The bucket as the entry points see it. */
  bucket: () => Promise<S3Location>;
  code: string;
  /** The refusal's sentence, as the drill records it and the CLI prints it. */
  sentence: RegExp;
  /** What a verification slice must say: the bucket could not be read (not damage), or nothing in particular. */
  slice: "unreachable" | "bounded";
  /** The drill, which looks for a snapshot it can open, passes an "encrypted" one over for an older plain one: it must never restore the planted one. */
  drill?: "passes over";
}

const canary = path.join(os.tmpdir(), `coffer-canary-${process.pid}`);
const proxies: FaultProxy[] = [];
async function behind(loc: S3Location, fault: "stall" | "500", match: (req: http.IncomingMessage) => boolean): Promise<S3Location> {
  const proxy = await startFaultProxy(loc.endpoint, { mode: "pass" });
  proxies.push(proxy);
  cleanups.push(() => proxy.close());
  proxy.failNext(fault, match, 100_000);
  return { ...loc, endpoint: proxy.endpoint };
}

const CASES: Case[] = [
  {
    name: "a document hash with path segments",
    code: "DB_BAD_HASH",
    sentence: /is not a SHA-256/,
    slice: "bounded",
    bucket: async () => {
      const b = await honestBucket("c-hash");
      const evil = `../../../../../../../../${canary.replace(/^\//, "")}/x`;
      await plantNewest(b, "coffer_full_20271231_235959Z.tar.gz", await withDatabase(cleanups, await b.get(`snapshots/${b.name}`), `UPDATE documents SET sha256 = '${evil}' WHERE id = (SELECT min(id) FROM documents)`));
      return b.loc;
    },
  },
  {
    name: "a plain snapshot named and indexed as encrypted",
    code: "OFFSITE_NAME_MISMATCH",
    sentence: /its name or index says otherwise/,
    slice: "bounded",
    drill: "passes over",
    bucket: async () => {
      const b = await honestBucket("c-mismatch");
      await plantNewest(b, "coffer_full_20271231_235959Z.tar.gz.age", await b.get(`snapshots/${b.name}`), { encryption: "recipients" });
      return b.loc;
    },
  },
  {
    name: "an index that understates its blobs",
    code: "OFFSITE_OVERSIZE",
    sentence: /larger than the \d+ bytes its index declares/,
    slice: "bounded",
    bucket: async () => {
      const b = await honestBucket("c-oversize");
      const index = JSON.parse((await b.get(`indexes/${b.name}.json`)).toString());
      index.blobs = index.blobs.map(([obj]: [string, number]) => [obj, 14]);
      await b.put(`indexes/${b.name}.json`, Buffer.from(JSON.stringify(index)));
      return b.loc;
    },
  },
  {
    name: "a store that stops sending a blob",
    code: "OFFSITE_STALLED",
    sentence: /stopped sending/,
    slice: "unreachable",
    bucket: async () => behind((await honestBucket("c-stall")).loc, "stall", (req) => req.method === "GET" && /\/blobs\//.test(req.url ?? "")),
  },
  {
    name: "a store that answers 500 to everything",
    code: "OFFSITE_FAILED",
    sentence: /HTTP 500/,
    slice: "unreachable",
    bucket: async () => behind((await honestBucket("c-500")).loc, "500", () => true),
  },
  {
    name: "a listing that never ends",
    code: "OFFSITE_LIST_TOO_LONG",
    sentence: /Listing .* was stopped/,
    slice: "unreachable",
    bucket: async () => ({ endpoint: await endlessLister(), region: "us-east-1", bucket: "bkt", prefix: "p", pathStyle: true, ...S3RVER_KEY, checksumCompat: true }),
  },
];

/** A fresh instance (the one being restored into, or drilled from) and a check that it is as it was. */
async function freshInstance() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  const docs = () => t.inst.db.prepare("SELECT count(*) FROM documents").pluck().get();
  const before = { docs: docs(), vault: fs.readdirSync(t.inst.paths.vault).length };
  return {
    t,
    unchanged(inst: Instance = t.inst) {
      expect(fs.readdirSync(inst.paths.staging).filter((n) => !n.startsWith("."))).toEqual([]);
      expect(docs()).toBe(before.docs);
      expect(fs.readdirSync(inst.paths.vault).length).toBe(before.vault);
      expect(fs.existsSync(canary)).toBe(false);
    },
  };
}

function coffer(args: string[], loc: S3Location): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), ...args], {
      env: { ...process.env, COFFER_DATA_DIR: "", AWS_ACCESS_KEY_ID: loc.accessKeyId, AWS_SECRET_ACCESS_KEY: loc.secretAccessKey, AWS_ENDPOINT_URL: loc.endpoint, COFFER_OFFSITE_STALL_MS: String(STALL_MS) },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr, ms: Date.now() - t0 }));
  });
}

const BOUND_MS = 15_000;

describe.each(CASES)("a hostile bucket: $name", (c) => {
  let loc: S3Location;
  beforeAll(async () => {
    loc = await c.bucket();
  });

  it("the wizard refuses it with its code, and nothing is written", async () => {
    const f = await freshInstance();
    const repo = openRepository(loc);
    const t0 = Date.now();
    await expect(stageOffsiteSnapshot(f.t.inst, repo, null)).rejects.toMatchObject({ code: c.code });
    expect(Date.now() - t0).toBeLessThan(BOUND_MS);
    closeRepository(repo);
    f.unchanged();
  });

  it("Settings → Restore (the configured repository) refuses it likewise", async () => {
    const f = await freshInstance();
    configureOffsite(f.t.inst, loc);
    const repo = configuredRepository(f.t.inst);
    await expect(stageOffsiteSnapshot(f.t.inst, repo, null, { owner: "user:1" })).rejects.toMatchObject({ code: c.code });
    closeRepository(repo);
    f.unchanged();
  });

  it("coffer restore --from says why in one line and exits 1, with no stack trace", async () => {
    const f = await freshInstance();
    closeInstance(f.t.inst);
    const r = await coffer(["--data-dir", f.t.inst.paths.root, "restore", "--from", `s3://${loc.bucket}/${loc.prefix}`, "--yes"], loc);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(c.sentence);
    expect(r.stderr).toContain(`(${c.code})`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.ms).toBeLessThan(BOUND_MS);
    expect(fs.readdirSync(f.t.inst.paths.staging).filter((n) => !n.startsWith("."))).toEqual([]);
    expect(fs.existsSync(canary)).toBe(false);
  });

  it("coffer export says why in one line, exits 1, and leaves no temp files", async () => {
    const tmp = tempDir("coffer-export-tmp-");
    cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const out = path.join(tmp, "out.tar.gz");
    const t0 = Date.now();
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const fd = fs.openSync(out, "w");
      const child = spawn(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), "export", "latest", "--from", `s3://${loc.bucket}/${loc.prefix}`], {
        env: { ...process.env, COFFER_DATA_DIR: "", TMPDIR: tmp, AWS_ACCESS_KEY_ID: loc.accessKeyId, AWS_SECRET_ACCESS_KEY: loc.secretAccessKey, AWS_ENDPOINT_URL: loc.endpoint, COFFER_OFFSITE_STALL_MS: String(STALL_MS) },
        stdio: ["ignore", fd, "pipe"],
      });
      let stderr = "";
      child.stderr!.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (code) => {
        fs.closeSync(fd);
        resolve({ code, stderr });
      });
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(c.sentence);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(Date.now() - t0).toBeLessThan(BOUND_MS);
    expect(fs.readdirSync(tmp)).toEqual(["out.tar.gz"]);
    expect(fs.existsSync(canary)).toBe(false);
  });

  it("a restore drill from the bucket records a failure with the reason, and cleans up its scratch", async () => {
    const f = await freshInstance();
    configureOffsite(f.t.inst, loc);
    const t0 = Date.now();
    const d = await runDrill(f.t.inst, { trigger: "manual", alertOptions: { backoffMs: [] } });
    expect(Date.now() - t0).toBeLessThan(BOUND_MS);
    if (c.drill === "passes over") {
      expect(d.archive).not.toBe("coffer_full_20271231_235959Z.tar.gz.age");
    } else {
      expect(d.status).toBe("failed");
      expect(d.error).toMatch(c.sentence);
    }
    expect(fs.readdirSync(f.t.inst.paths.tmp).filter((n) => n.startsWith("drill-"))).toEqual([]);
    f.unchanged();
  });

  it("a verification slice ends in bounded time, says so when the bucket cannot be read, and writes nothing", async () => {
    const f = await freshInstance();
    configureOffsite(f.t.inst, loc);
    const t0 = Date.now();
    const r = await verifySlice(f.t.inst, { all: true, alertOptions: { backoffMs: [] } });
    expect(Date.now() - t0).toBeLessThan(BOUND_MS);
    if (c.slice === "unreachable") expect(r.offsiteError).toMatch(c.sentence);
    f.unchanged();
  });
});
