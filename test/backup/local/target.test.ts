import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LocalDirTarget, type BackupTarget } from "@/lib/backup/local/target";
import { S3Target, s3Client } from "@/lib/backup/offsite/s3";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { tempDir } from "../../support/instance";
import { startS3, type TestS3 } from "../../support/s3";

/**
 * The contract every BackupTarget keeps (karakeep's AssetStore compliance
 * suite): one suite, run over every implementation. The S3 target joins it
 * with its own factory.
 */
interface TargetFactory {
  name: string;
  make(): Promise<{ target: BackupTarget; cleanup: () => Promise<void> | void }>;
}

const factories: TargetFactory[] = [
  {
    name: "local directory",
    async make() {
      const dir = tempDir("coffer-target-");
      return { target: new LocalDirTarget(dir), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: "S3 bucket (s3rver)",
    async make() {
      s3 ??= await startS3();
      const loc = await s3.location("home/instance");
      const client = s3Client(loc);
      return { target: new S3Target(client, loc, "snapshots"), cleanup: () => client.destroy() };
    },
  },
];

let s3: TestS3 | undefined;
afterAll(async () => {
  await s3?.close();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const writeBytes = (data: Buffer) => (out: NodeJS.WritableStream) =>
  new Promise<void>((resolve, reject) => {
    out.on("error", reject);
    out.end(data, () => resolve());
  });

describe.each(factories)("BackupTarget compliance: $name", (factory) => {
  async function fresh() {
    const { target, cleanup } = await factory.make();
    cleanups.push(cleanup);
    return target;
  }

  it("put then stat, list and open give back the same bytes", async () => {
    const t = await fresh();
    const data = crypto.randomBytes(3 * 1024 * 1024 + 17);
    const put = await t.put("coffer_full_20261122_143022Z.tar.gz", writeBytes(data));
    expect(put).toMatchObject({ name: "coffer_full_20261122_143022Z.tar.gz", size: data.length });
    expect(await t.stat(put.name)).toMatchObject({ name: put.name, size: data.length });
    expect((await t.list()).map((o) => o.name)).toEqual([put.name]);
    const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
    expect(sha(await readAll(await t.open(put.name)))).toBe(sha(data));
  });

  it("an object is never visible under its name before it is complete, and a failed write leaves nothing", async () => {
    const t = await fresh();
    let seenMidway: string[] = ["not checked"];
    await expect(
      t.put("a.tar.gz", async (out) => {
        out.write(Buffer.alloc(1024));
        seenMidway = (await t.list()).map((o) => o.name);
        throw new Error("the writer failed");
      }),
    ).rejects.toThrow("the writer failed");
    expect(seenMidway).toEqual([]);
    expect(await t.list()).toEqual([]);
    expect(await t.stat("a.tar.gz")).toBeNull();
    expect(await t.sweepPartials()).toEqual([]);
  });

  it("beforeCommit can abandon an object at the last moment", async () => {
    const t = await fresh();
    await expect(
      t.put("b.tar.gz", writeBytes(Buffer.from("x")), {
        beforeCommit: () => {
          throw new Error("the lock was lost");
        },
      }),
    ).rejects.toThrow("the lock was lost");
    expect(await t.list()).toEqual([]);
  });

  it("never replaces an existing object", async () => {
    const t = await fresh();
    await t.put("c.tar.gz", writeBytes(Buffer.from("first")));
    await expect(t.put("c.tar.gz", writeBytes(Buffer.from("second")))).rejects.toThrow();
    expect((await readAll(await t.open("c.tar.gz"))).toString()).toBe("first");
  });

  it("remove deletes; open, stat and remove of what is not there are 404 or null", async () => {
    const t = await fresh();
    await t.put("d.tar.gz", writeBytes(Buffer.from("x")));
    await t.remove("d.tar.gz");
    expect(await t.stat("d.tar.gz")).toBeNull();
    await expect(t.open("d.tar.gz")).rejects.toMatchObject({ status: 404 });
    await expect(t.remove("d.tar.gz")).rejects.toMatchObject({ status: 404 });
  });

  it("open with a range gives those bytes; a range past the end or empty gives none", async () => {
    const t = await fresh();
    const data = crypto.randomBytes(200 * 1024 + 3);
    await t.put("r.tar.gz", writeBytes(data));
    expect((await readAll(await t.open("r.tar.gz", { start: 70_000, end: 140_001 }))).equals(data.subarray(70_000, 140_001))).toBe(true);
    expect((await readAll(await t.open("r.tar.gz", { start: data.length - 10 }))).equals(data.subarray(data.length - 10))).toBe(true);
    expect((await readAll(await t.open("r.tar.gz", { start: 5, end: data.length + 100 }))).equals(data.subarray(5))).toBe(true);
    expect((await readAll(await t.open("r.tar.gz", { start: data.length + 5 }))).length).toBe(0);
    expect((await readAll(await t.open("r.tar.gz", { start: 10, end: 10 }))).length).toBe(0);
    await expect(t.open("nothing.tar.gz", { start: 1 })).rejects.toMatchObject({ status: 404 });
  });

  it("names that could escape or hide are refused, not joined to a path", async () => {
    const t = await fresh();
    for (const bad of ["../x", "a/b", ".hidden", "", "x\0y", "/etc/passwd", "..", "a\\b"]) {
      await expect(t.open(bad), bad).rejects.toMatchObject({ status: 404 });
      expect(await t.stat(bad), bad).toBeNull();
      await expect(t.put(bad, writeBytes(Buffer.from("x"))), bad).rejects.toThrow();
    }
  });
});

describe("LocalDirTarget specifics", () => {
  it("a writer that died leaves a hidden partial that list ignores and sweepPartials removes; symlinks are never read", async () => {
    const dir = tempDir("coffer-target-");
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const t = new LocalDirTarget(dir);
    fs.writeFileSync(path.join(dir, ".coffer_full_20260101_000000Z.tar.gz.partial"), "half");
    fs.writeFileSync(path.join(dir, "notes.txt"), "someone else's file");
    fs.symlinkSync("/etc/passwd", path.join(dir, "coffer_full_20260102_000000Z.tar.gz"));
    expect((await t.list()).map((o) => o.name)).toEqual(["notes.txt"]);
    await expect(t.open("coffer_full_20260102_000000Z.tar.gz")).rejects.toMatchObject({ status: 404 });
    expect(await t.sweepPartials()).toEqual([".coffer_full_20260101_000000Z.tar.gz.partial"]);
    expect(fs.readdirSync(dir).sort()).toEqual(["coffer_full_20260102_000000Z.tar.gz", "notes.txt"]);
  });

  it("keeps a sidecar hidden beside its object: never listed, removed with it, swept when its object is gone", async () => {
    const dir = tempDir("coffer-target-");
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const t = new LocalDirTarget(dir);
    await t.put("s.tar.gz", writeBytes(Buffer.from("archive")), { sidecar: () => Buffer.from("its index") });
    expect(fs.readdirSync(dir).sort()).toEqual([".s.tar.gz.idx", "s.tar.gz"]);
    expect(fs.statSync(path.join(dir, ".s.tar.gz.idx")).mode & 0o777).toBe(0o600);
    expect((await readAll((await t.openSidecar("s.tar.gz"))!)).toString()).toBe("its index");
    expect((await t.list()).map((o) => o.name)).toEqual(["s.tar.gz"]);
    expect(await t.sweepPartials()).toEqual([]);
    await t.remove("s.tar.gz");
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(await t.openSidecar("s.tar.gz")).toBeNull();

    // A sidecar that cannot be made leaves the object without one; an earlier object's is never kept for a new one.
    await t.put("u.tar.gz", writeBytes(Buffer.from("x")), {
      sidecar: () => {
        throw new Error("no index");
      },
    });
    expect(fs.readdirSync(dir)).toEqual(["u.tar.gz"]);
    fs.writeFileSync(path.join(dir, ".v.tar.gz.idx"), "left by a v.tar.gz deleted by hand");
    fs.writeFileSync(path.join(dir, ".w.tar.gz.idx.partial"), "a writer died");
    expect((await t.sweepPartials()).sort()).toEqual([".v.tar.gz.idx", ".w.tar.gz.idx.partial"]);
    fs.writeFileSync(path.join(dir, ".v.tar.gz.idx"), "stale");
    await t.put("v.tar.gz", writeBytes(Buffer.from("new")));
    expect(await t.openSidecar("v.tar.gz")).toBeNull();
    fs.symlinkSync("/etc/passwd", path.join(dir, ".u.tar.gz.idx"));
    expect(await t.openSidecar("u.tar.gz")).toBeNull();
  });

  it("writes objects 0600 and fsyncs before they appear", async () => {
    const dir = tempDir("coffer-target-");
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const t = new LocalDirTarget(dir);
    await t.put("e.tar.gz", writeBytes(Buffer.from("secret")));
    expect(fs.statSync(path.join(dir, "e.tar.gz")).mode & 0o777).toBe(0o600);
  });
});

describe("S3Target specifics", () => {
  it("keeps no sidecars", async () => {
    s3 ??= await startS3();
    const loc = await s3.location("sidecar");
    const client = s3Client(loc);
    cleanups.push(() => client.destroy());
    const t = new S3Target(client, loc, "snapshots");
    await t.put("s.tar.gz", writeBytes(Buffer.from("archive")), { sidecar: () => Buffer.from("its index") });
    expect((await t.list()).map((o) => o.name)).toEqual(["s.tar.gz"]);
    expect(await t.openSidecar("s.tar.gz")).toBeNull();
  });

  it("lists past one page (1000 keys) by continuation token", async () => {
    s3 ??= await startS3();
    const loc = await s3.location("many");
    const client = s3Client(loc);
    cleanups.push(() => client.destroy());
    const t = new S3Target(client, loc, "snapshots");
    const names = Array.from({ length: 1003 }, (_, i) => `obj-${String(i).padStart(4, "0")}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < names.length) {
          const n = names[next++];
          await client.send(new PutObjectCommand({ Bucket: loc.bucket, Key: `${loc.prefix}/snapshots/${n}`, Body: n }));
        }
      }),
    );
    expect((await t.list()).map((o) => o.name).sort()).toEqual(names);
  }, 60_000);

  it("a multipart upload whose writer fails mid-way reports the writer's error (s3rver cannot abort multipart uploads) and leaves nothing listed", async () => {
    s3 ??= await startS3();
    const loc = await s3.location("mp");
    const client = s3Client(loc);
    cleanups.push(() => client.destroy());
    const t = new S3Target(client, loc, "snapshots");
    await expect(
      t.put("big.tar.gz", async (out) => {
        for (let i = 0; i < 20; i++) {
          if (!out.write(crypto.randomBytes(1024 * 1024))) await new Promise((r) => out.once("drain", r));
        }
        throw new Error("the writer failed at 20 MiB");
      }),
    ).rejects.toThrow("the writer failed at 20 MiB");
    expect(await t.list()).toEqual([]);
    expect(await t.sweepPartials()).toEqual([]); // ListMultipartUploads is 501 there: handled, not thrown

    const data = crypto.randomBytes(20 * 1024 * 1024 + 5);
    const put = await t.put("whole.tar.gz", writeBytes(data));
    expect(put.size).toBe(data.length);
    const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
    expect(sha(await readAll(await t.open("whole.tar.gz")))).toBe(sha(data));
  });
});
