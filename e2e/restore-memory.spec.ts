import crypto from "node:crypto";
import zlib from "node:zlib";
import { Readable, Transform } from "node:stream";
import { test, expect } from "@playwright/test";
import { startServer, SETUP_CODE } from "./support/server";
import { rssSampler } from "./support/rss";
import { tarHeader, tarPadding, TAR_END } from "../lib/backup/format/tar";

const BLOB = 32 * 1024 * 1024;
const BLOBS = Number(process.env.COFFER_E2E_UPLOAD_BLOBS ?? 33); // 33 x 32 MiB = 1.03 GiB

/** Deterministic incompressible bytes (AES-CTR keystream), produced a chunk at a time. */
function* blobChunks(i: number): Generator<Buffer> {
  const cipher = crypto.createCipheriv("aes-128-ctr", crypto.createHash("md5").update(`blob-${i}`).digest(), Buffer.alloc(16));
  const zero = Buffer.alloc(1024 * 1024);
  for (let done = 0; done < BLOB; done += zero.length) yield cipher.update(zero);
}

test("uploading a 1 GiB archive keeps the server's memory under 200 MiB", async () => {
  test.setTimeout(600_000);
  // First pass: the blobs' names (their SHA-256), as the meta must list counts and bytes.
  const names: string[] = [];
  for (let i = 0; i < BLOBS; i++) {
    const h = crypto.createHash("sha256");
    for (const c of blobChunks(i)) h.update(c);
    names.push(h.digest("hex"));
  }
  const meta = Buffer.from(
    JSON.stringify({
      magic: "coffer-backup",
      format_version: 1,
      app_version: "0.1.0",
      schema_version: 2,
      created_at: new Date().toISOString(),
      scope: "vault",
      trigger: "manual",
      members: {},
      vault: { objects: BLOBS, bytes: BLOBS * BLOB },
      tables: {},
    }),
  );
  const mtime = new Date();
  async function* tarStream() {
    yield tarHeader("backup_meta.json", meta.length, mtime);
    yield meta;
    yield tarPadding(meta.length);
    for (let i = 0; i < BLOBS; i++) {
      yield tarHeader(`vault/${names[i].slice(0, 2)}/${names[i]}`, BLOB, mtime);
      yield* blobChunks(i);
    }
    yield TAR_END;
  }
  let sent = 0;
  const counter = new Transform({
    transform(c: Buffer, _e, cb) {
      sent += c.length;
      cb(null, c);
    },
  });
  const body = Readable.from(tarStream()).pipe(zlib.createGzip({ level: 0 })).pipe(counter);

  const server = await startServer();
  const sampler = rssSampler(server.proc.pid!);
  const res = await fetch(`${server.url}/api/setup/restore`, {
    method: "POST",
    headers: { "x-setup-token": SETUP_CODE, "content-type": "application/gzip" },
    body: Readable.toWeb(body) as ReadableStream,
    duplex: "half",
  } as RequestInit);
  const peak = sampler.stop();
  const preview = await res.json();
  expect(res.status, JSON.stringify(preview)).toBe(201);
  expect(preview.vault).toEqual({ objects: BLOBS, bytes: BLOBS * BLOB });
  expect(sent).toBeGreaterThanOrEqual(1024 * 1024 * 1024);
  console.log(`uploaded ${(sent / 2 ** 30).toFixed(2)} GiB; server peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`);
  expect(peak).toBeLessThan(200 * 1024 * 1024);
  // Discard it: a vault-only staged restore is never applied.
  expect((await fetch(`${server.url}/api/restore/${preview.id}`, { method: "DELETE", headers: { "x-setup-token": SETUP_CODE } })).status).toBe(204);
  await server.stop();
});
