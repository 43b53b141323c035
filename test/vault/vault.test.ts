import fs from "node:fs";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import v8 from "node:v8";
import vm from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { createDocument, deleteDocument, openDocumentStream, cleanDocumentName } from "@/lib/vault/documents";
import { deleteForever } from "@/lib/vault/trash";
import { blobPath, stageBlob } from "@/lib/vault/blobs";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { makeSetUpInstance } from "../support/instance";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));
async function setUp() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  // Erased documents' files here go at once: with continuous protection on they stay for its window (test/continuous.test.ts).
  const s = currentSettings(t.inst.paths.settings);
  saveSettings(t.inst.paths.settings, { ...s, backup: { ...s.backup, continuous: { ...s.backup.continuous, enabled: false } } });
  return t;
}
const body = (s: string | Buffer) => Readable.from([Buffer.from(s)]);

/** `total` pseudo-random bytes, produced chunk by chunk and never all at once. */
function generated(total: number, seed: string, at?: { bytes: number; hook: () => void }): Readable {
  const base = crypto.createHash("sha512").update(seed).digest();
  const pattern = Buffer.alloc(256 * 1024);
  for (let off = 0; off < pattern.length; off += base.length) base.copy(pattern, off);
  let sent = 0;
  let counter = 0;
  return new Readable({
    read() {
      if (sent >= total) return this.push(null);
      const n = Math.min(pattern.length, total - sent);
      const chunk = Buffer.from(pattern.subarray(0, n));
      chunk.writeUInt32BE(counter++, 0);
      if (at && sent < at.bytes && sent + n >= at.bytes) at.hook();
      sent += n;
      this.push(chunk);
    },
  });
}

async function sha256OfStream(s: Readable): Promise<string> {
  const h = crypto.createHash("sha256");
  for await (const c of s) h.update(c as Buffer);
  return h.digest("hex");
}

describe("blob store", () => {
  it("stores identical bytes once and keeps the blob until the last reference goes", async () => {
    const { inst, admin, member } = await setUp();
    const a = await createDocument(inst, admin, null, { name: "one.txt", body: body("same bytes"), maxBytes: 1e6 });
    const b = await createDocument(inst, member, null, { name: "two.txt", body: body("same bytes"), maxBytes: 1e6 });
    expect(a.sha256).toBe(b.sha256);
    expect(a.sha256).toBe(crypto.createHash("sha256").update("same bytes").digest("hex"));
    const file = blobPath(inst.paths, a.sha256);
    expect(fs.readdirSync(`${inst.paths.vault}/${a.sha256.slice(0, 2)}`)).toEqual([a.sha256]);

    deleteDocument(inst, admin, null, a.id);
    deleteForever(inst, admin, null, a.id);
    expect(fs.existsSync(file)).toBe(true);
    deleteDocument(inst, member, null, b.id);
    expect(fs.existsSync(file)).toBe(true); // in the trash
    deleteForever(inst, admin, null, b.id);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readdirSync(inst.paths.tmp)).toEqual([]);
  });

  it("streams a 50 MB upload to disk without holding it in memory", async () => {
    const { inst, admin } = await setUp();
    const total = 50 * 1024 * 1024;
    const expected = await sha256OfStream(generated(total, "fifty"));
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const retained = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const base = retained();
    let midway = 0;
    // 40 MB into the upload, collect garbage and see what is still held.
    const probe = { bytes: 40 * 1024 * 1024, hook: () => (midway = retained() - base) };
    const doc = await createDocument(inst, admin, null, { name: "big.bin", body: generated(total, "fifty", probe), maxBytes: total });
    expect(doc.size).toBe(total);
    expect(doc.sha256).toBe(expected);
    expect(await sha256OfStream(openDocumentStream(inst, doc))).toBe(expected);
    // Holding the upload would need >= 50 MB; streaming needs a few chunks.
    expect(midway).toBeLessThan(16 * 1024 * 1024);
  });

  it("an upload over the limit is refused with 413 and leaves nothing behind", async () => {
    const { inst } = await setUp();
    await expect(stageBlob(inst.paths, generated(3 * 1024 * 1024, "x"), 1024 * 1024)).rejects.toMatchObject({
      status: 413,
      code: "TOO_LARGE",
    });
    expect(fs.readdirSync(inst.paths.tmp)).toEqual([]);
  });

  it("cleans file names: no directories, no control characters, not empty", () => {
    expect(cleanDocumentName("../../etc/passwd")).toBe("passwd");
    expect(cleanDocumentName("C:\\Users\\me\\report.pdf")).toBe("report.pdf");
    expect(cleanDocumentName("a\u0000b\nc.txt")).toBe("abc.txt");
    expect(() => cleanDocumentName("")).toThrow(expect.objectContaining({ status: 400 }));
    expect(() => cleanDocumentName("dir/..")).toThrow(expect.objectContaining({ status: 400 }));
  });
});
