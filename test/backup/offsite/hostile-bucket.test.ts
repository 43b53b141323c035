// A bucket is untrusted input (README, Security): whoever can write it must not be able to write
// files outside staging, exhaust memory with a listing, or stage more than an index declared.
// Each case crafts the bucket's bytes as an attacker with the S3 key would, then runs an entry point.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import { Readable, Writable } from "node:stream";
import type { AddressInfo } from "node:net";
import { PutObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDocument } from "@/lib/vault/documents";
import { snapshotDatabase } from "@/lib/backup/format/db-snapshot";
import { closeRepository, listOffsiteSnapshots, openRepository, type OffsiteRepo } from "@/lib/backup/offsite/repository";
import { exportSnapshot } from "@/lib/backup/offsite/pull";
import { pushOffsite } from "@/lib/backup/offsite/push";
import { stageOffsiteSnapshot } from "@/lib/backup/offsite/pull";
import { s3Client } from "@/lib/backup/offsite/s3";
import { type S3Location } from "@/lib/backup/offsite/location";
import { makeSetUpInstance, tempDir } from "../../support/instance";
import { startS3, S3RVER_KEY, type TestS3 } from "../../support/s3";
import { withDatabase } from "../../support/hostile";
import { startFaultProxy } from "../../support/fault-proxy";

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3.close();
});
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function bucketWithSnapshot() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  for (let i = 0; i < 2; i++) await createDocument(t.inst, t.admin, null, { name: `doc-${i}.bin`, body: Readable.from([Buffer.from(`document ${i} `.repeat(2000))]), maxBytes: 1e9 });
  const loc = await s3.location("hostile");
  const repo = openRepository(loc);
  cleanups.push(() => closeRepository(repo));
  const work = fs.mkdtempSync(path.join(t.inst.paths.tmp, "t-"));
  const dbSnapshot = await snapshotDatabase(t.inst, work);
  const pushed = await pushOffsite(t.inst, repo, { scope: "full", trigger: "manual", dbSnapshot, now: new Date("2026-12-01T03:00:00Z") });
  fs.rmSync(work, { recursive: true, force: true });
  const client = s3Client(loc);
  cleanups.push(() => client.destroy());
  const get = async (key: string) => Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: `${loc.prefix}/${key}` }))).Body!.transformToByteArray());
  const put = (key: string, body: Buffer) => client.send(new PutObjectCommand({ Bucket: loc.bucket, Key: `${loc.prefix}/${key}`, Body: body }));
  const name = pushed.snapshot;
  return { ...t, loc, repo, name, get, put };
}

/** A fresh instance that a wizard restore would stage into; what it holds before, to check it is unchanged. */
async function target() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  const before = t.inst.db.prepare("SELECT count(*) FROM documents").pluck().get();
  return {
    inst: t.inst,
    unchanged: () => {
      expect(t.inst.db.prepare("SELECT count(*) FROM documents").pluck().get()).toBe(before);
      expect(fs.readdirSync(t.inst.paths.staging).filter((n) => !n.startsWith("."))).toEqual([]);
    },
  };
}


const drain = () => new Writable({ write: (_c, _e, cb) => cb() }).on("error", () => {});

describe("a hostile bucket", () => {
  it("a document hash with path segments is refused before any blob is fetched, by a wizard or Settings restore and by coffer export", async () => {
    const b = await bucketWithSnapshot();
    const canary = path.join(os.tmpdir(), `coffer-canary-${process.pid}-${Date.now()}`);
    cleanups.push(() => fs.rmSync(canary, { recursive: true, force: true }));
    const evil = `../../../../../../../../${canary.replace(/^\//, "")}/x`;
    const crafted = await withDatabase(cleanups, await b.get(`snapshots/${b.name}`), `UPDATE documents SET sha256 = '${evil}' WHERE id = (SELECT min(id) FROM documents)`);
    const name = "coffer_full_20271231_235959Z.tar.gz";
    await b.put(`snapshots/${name}`, crafted);
    const index = JSON.parse((await b.get(`indexes/${b.name}.json`)).toString());
    await b.put(`indexes/${name}.json`, Buffer.from(JSON.stringify({ ...index, snapshot: name, snapshot_bytes: crafted.length })));

    const t = await target();
    await expect(stageOffsiteSnapshot(t.inst, b.repo, name)).rejects.toMatchObject({ code: "DB_BAD_HASH", status: 422 });
    t.unchanged();
    const tmp = tempDir("coffer-export-");
    cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
    await expect(exportSnapshot(b.repo, name, drain(), { tmpDir: tmp })).rejects.toMatchObject({ code: "DB_BAD_HASH" });
    expect(fs.readdirSync(tmp)).toEqual([]);
    expect(fs.existsSync(canary)).toBe(false);
  });

  it("a plain snapshot named .age (the attack that needs no key) is refused by its content, not trusted by its name", async () => {
    const b = await bucketWithSnapshot();
    const plain = await b.get(`snapshots/${b.name}`);
    const name = "coffer_full_20271231_235959Z.tar.gz.age";
    await b.put(`snapshots/${name}`, plain);
    const index = JSON.parse((await b.get(`indexes/${b.name}.json`)).toString());
    await b.put(`indexes/${name}.json`, Buffer.from(JSON.stringify({ ...index, snapshot: name, encryption: "recipients" })));
    const t = await target();
    await expect(stageOffsiteSnapshot(t.inst, b.repo, name)).rejects.toMatchObject({ code: "OFFSITE_NAME_MISMATCH", status: 422 });
    t.unchanged();
  });

  it("a blob longer than its index declares is cut off at the declared size, and nothing is left in staging", async () => {
    const b = await bucketWithSnapshot();
    const index = JSON.parse((await b.get(`indexes/${b.name}.json`)).toString());
    index.blobs = index.blobs.map(([obj]: [string, number]) => [obj, 14]);
    await b.put(`indexes/${b.name}.json`, Buffer.from(JSON.stringify(index)));
    const t = await target();
    await expect(stageOffsiteSnapshot(t.inst, b.repo, b.name)).rejects.toMatchObject({ code: "OFFSITE_OVERSIZE", status: 422 });
    t.unchanged();
  });

  it("a snapshot archive longer than its index recorded is cut off there (OFFSITE_OVERSIZE), before a byte past it is staged", async () => {
    const b = await bucketWithSnapshot();
    const index = JSON.parse((await b.get(`indexes/${b.name}.json`)).toString());
    await b.put(`indexes/${b.name}.json`, Buffer.from(JSON.stringify({ ...index, snapshot_bytes: 200 })));
    const t = await target();
    await expect(stageOffsiteSnapshot(t.inst, b.repo, b.name)).rejects.toMatchObject({ code: "OFFSITE_OVERSIZE", status: 422 });
    t.unchanged();
  });

  it("a listing that says IsTruncated forever ends quickly with OFFSITE_LIST_TOO_LONG, and so does a token that repeats", async () => {
    let pages = 0;
    const repeat = { on: false };
    const server = http.createServer((req, res) => {
      pages++;
      const token = repeat.on ? "same" : `t${pages}`;
      res.writeHead(200, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/snapshots/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>${token}</NextContinuationToken></ListBucketResult>`,
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const loc: S3Location = { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, region: "us-east-1", bucket: "b", prefix: "p", pathStyle: true, ...S3RVER_KEY, checksumCompat: true };
    const repo: OffsiteRepo = openRepository(loc);
    cleanups.push(() => closeRepository(repo));
    const t0 = Date.now();
    await expect(listOffsiteSnapshots(repo)).rejects.toMatchObject({ code: "OFFSITE_LIST_TOO_LONG", status: 502 });
    expect(pages).toBeLessThanOrEqual(30);
    expect(Date.now() - t0).toBeLessThan(10_000);
    repeat.on = true;
    pages = 0;
    await expect(listOffsiteSnapshots(repo)).rejects.toMatchObject({ code: "OFFSITE_LIST_TOO_LONG", message: expect.stringContaining("came back twice") });
    expect(pages).toBe(2);
  });

  it("a blob that stops arriving is given up after COFFER_OFFSITE_STALL_MS (OFFSITE_STALLED), its connection closed, nothing left in staging", async () => {
    const b = await bucketWithSnapshot();
    const proxy = await startFaultProxy(b.loc.endpoint, { mode: "pass" });
    cleanups.push(() => proxy.close());
    const repo = openRepository({ ...b.loc, endpoint: proxy.endpoint });
    cleanups.push(() => closeRepository(repo));
    const before = process.env.COFFER_OFFSITE_STALL_MS;
    process.env.COFFER_OFFSITE_STALL_MS = "1000";
    cleanups.push(() => void (before === undefined ? delete process.env.COFFER_OFFSITE_STALL_MS : (process.env.COFFER_OFFSITE_STALL_MS = before)));
    proxy.failNext("stall", (req) => req.method === "GET" && /\/blobs\//.test(req.url ?? ""), 100);
    const t = await target();
    const t0 = Date.now();
    await expect(stageOffsiteSnapshot(t.inst, repo, b.name)).rejects.toMatchObject({ code: "OFFSITE_STALLED", status: 504 });
    expect(Date.now() - t0).toBeLessThan(8_000);
    expect(proxy.injected()).toBeGreaterThan(0);
    await expect.poll(() => proxy.stalledOpen(), { timeout: 3_000 }).toBe(0);
    t.unchanged();
  });

  it("a caller that goes away stops the transfer at once (CLIENT_GONE): the store's connections close, nothing is left in staging", async () => {
    const b = await bucketWithSnapshot();
    const proxy = await startFaultProxy(b.loc.endpoint, { mode: "pass" });
    cleanups.push(() => proxy.close());
    const repo = openRepository({ ...b.loc, endpoint: proxy.endpoint });
    cleanups.push(() => closeRepository(repo));
    proxy.failNext("stall", (req) => req.method === "GET" && /\/blobs\//.test(req.url ?? ""), 100);
    const t = await target();
    const client = new AbortController();
    setTimeout(() => client.abort(), 700);
    const t0 = Date.now();
    await expect(stageOffsiteSnapshot(t.inst, repo, b.name, { signal: client.signal })).rejects.toMatchObject({ code: "CLIENT_GONE" });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(proxy.injected()).toBeGreaterThan(0);
    await expect.poll(() => proxy.stalledOpen(), { timeout: 3_000 }).toBe(0);
    t.unchanged();
    const tmp = tempDir("coffer-export-");
    cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const gone = new AbortController();
    setTimeout(() => gone.abort(), 700);
    await expect(exportSnapshot(repo, b.name, drain(), { tmpDir: tmp, signal: gone.signal })).rejects.toMatchObject({ code: "CLIENT_GONE" });
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it("a redirect is not followed to a host nobody configured, and a store that answers 500 to everything fails with a sentence", async () => {
    let evilHits = 0;
    const evil = http.createServer((_req, res) => {
      evilHits++;
      res.end();
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => evil.close(() => r())));
    let mode: "307" | "301" | "500" = "307";
    const store = http.createServer((req, res) => {
      req.resume();
      if (mode === "307") {
        res.writeHead(307, { location: `http://127.0.0.1:${(evil.address() as AddressInfo).port}${req.url}` });
        return res.end();
      }
      res.writeHead(mode === "301" ? 301 : 500, { "content-type": "application/xml" });
      res.end(mode === "301" ? "<Error><Code>PermanentRedirect</Code><Message>elsewhere</Message></Error>" : "<Error><Code>InternalError</Code><Message>boom</Message></Error>");
    });
    await new Promise<void>((r) => store.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => store.close(() => r())));
    const loc: S3Location = { endpoint: `http://127.0.0.1:${(store.address() as AddressInfo).port}`, region: "us-east-1", bucket: "b", prefix: "p", pathStyle: true, ...S3RVER_KEY, checksumCompat: true };
    const repo = openRepository(loc);
    cleanups.push(() => closeRepository(repo));
    const t = await target();
    for (const m of ["307", "301", "500"] as const) {
      mode = m;
      const err = await stageOffsiteSnapshot(t.inst, repo, null).catch((e: unknown) => e);
      expect(err, m).toMatchObject({ status: 502, code: { "307": "OFFSITE_REDIRECT", "301": "OFFSITE_REGION", "500": "OFFSITE_FAILED" }[m] });
      expect((err as Error).message, m).not.toMatch(/\n\s+at /);
      t.unchanged();
    }
    expect(evilHits).toBe(0);
  });
});
