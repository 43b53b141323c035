import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import zlib from "node:zlib";
import { execFileSync } from "node:child_process";
import { Readable, Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { writeStoredBackup } from "@/lib/backup/local/stored";
import { deleteStoredBackup, listStoredBackups } from "@/lib/backup/local/repository";
import { LocalDirTarget } from "@/lib/backup/local/target";
import { packArchive } from "@/lib/backup/format/writer";
import { snapshotDatabase } from "@/lib/backup/format/db-snapshot";
import { readArchive } from "@/lib/backup/format/reader";
import { readSeekIndex, SEEK_INDEX_MAGIC, type SeekIndex } from "@/lib/backup/format/seek-index";
import { parseFileHeader } from "@/lib/backup/format/tar";
import { planRetention } from "@/lib/backup/retention";
import { systemActor } from "@/lib/audit/log";
import { createDocument } from "@/lib/vault/documents";
import { blobPath } from "@/lib/vault/blobs";
import { generateKey, parseIdentities, type AgeKeys } from "@/lib/crypto/age";
import { clearBrowseCache, lastFetch, storedSource } from "@/lib/backup/restore/browse";
import { restoreDocuments } from "@/lib/backup/restore/documents";
import { makeSetUpInstance, tempDir } from "../../support/instance";
import { sha256 } from "../../support/hostile";

/**
 * Seekable archives (docs/architecture.md#restoring-single-documents): a
 * stored backup gets a sidecar seek index, one document is then read by
 * seeking (a small part of the archive, plain or age-encrypted), and an index
 * that is stale, foreign or lying is ignored or caught, never trusted.
 */

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const MiB = 1024 * 1024;

/** An instance with `big` incompressible documents of 1 MiB (stored, so tens of MiB of archive) and two small ones. */
async function instanceWithVault(big = 30) {
  const t = await makeSetUpInstance();
  const backups = tempDir("coffer-seek-");
  cleanups.push(() => {
    clearBrowseCache(t.inst);
    t.cleanup();
    fs.rmSync(backups, { recursive: true, force: true });
  });
  const docs = [];
  for (let i = 0; i < big; i++) {
    docs.push(await createDocument(t.inst, i % 2 ? t.member : t.admin, null, { name: `scan-${i}.bin`, body: Readable.from([crypto.randomBytes(MiB)]), maxBytes: 1e9 }));
    if (i === Math.floor(big / 2)) docs.push(await createDocument(t.inst, t.admin, null, { name: "contract.txt", body: Readable.from([Buffer.from("the contract, as signed in March\n".repeat(100))]), maxBytes: 1e9 }));
  }
  const target = new LocalDirTarget(backups);
  return { ...t, docs, target, backups };
}

type T = Awaited<ReturnType<typeof instanceWithVault>>;

/** Take a document out of the live instance entirely (row and file), as a hard delete would. */
function forget(t: T, doc: { id: number; sha256: string; size: number }) {
  t.inst.db.prepare("DELETE FROM documents WHERE id = ?").run(doc.id);
  fs.rmSync(blobPath(t.inst.paths, doc.sha256));
}

/** The 1 MiB documents at these places in archive order (blobs go in by hash). */
const scans = (t: T, ...at: number[]) => {
  const sorted = t.docs.filter((d) => d.name.startsWith("scan-")).sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1));
  return at.map((i) => sorted[i]);
};

const sidecarOf = (t: T, name: string) => path.join(t.backups, `.${name}.idx`);

async function parsedIndex(file: string): Promise<SeekIndex> {
  return readSeekIndex(fs.createReadStream(file), () => true);
}

async function restoreOne(t: T, name: string, doc: { id: number }, keys?: AgeKeys) {
  clearBrowseCache(t.inst);
  const out = await restoreDocuments(t.inst, t.admin, null, await storedSource(t.inst, name, t.target), { ids: [doc.id] }, { keys });
  return { out, stats: lastFetch().get(name)! };
}

function liveFileHash(t: T, doc: { sha256: string }): string {
  return sha256(fs.readFileSync(blobPath(t.inst.paths, doc.sha256)));
}

describe("the sidecar of a stored backup", () => {
  it("is written, hidden from listings, retention and sweeps, and removed with its backup; an orphan is swept", async () => {
    const t = await instanceWithVault(2);
    const { name } = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target });
    const sidecar = sidecarOf(t, name);
    expect(fs.existsSync(sidecar)).toBe(true);
    expect(fs.statSync(sidecar).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(sidecar, "latin1").split("\n")[0]).toBe(SEEK_INDEX_MAGIC);
    expect((await t.target.list()).map((o) => o.name)).toEqual([name]);
    expect((await listStoredBackups(t.inst, t.target)).map((b) => b.name)).toEqual([name]);
    expect(planRetention((await t.target.list()).map((o) => ({ name: o.name, verified: true })), { mode: "count", count: 1 } as never, new Date()).keep).toEqual([name]);
    expect(await t.target.sweepPartials()).toEqual([]);
    expect(fs.existsSync(sidecar)).toBe(true);

    await deleteStoredBackup(t.inst, systemActor("system"), name, t.target);
    expect(fs.readdirSync(t.backups)).toEqual([]);

    // A backup deleted behind Coffer's back leaves its sidecar: the start-up sweep removes it.
    const second = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target });
    fs.rmSync(path.join(t.backups, second.name));
    expect(await t.target.sweepPartials()).toEqual([`.${second.name}.idx`]);
    expect(fs.readdirSync(t.backups)).toEqual([]);
  });

  it("names every member where its header is and every block where inflating can start", async () => {
    const t = await instanceWithVault(3);
    const { name, meta } = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target });
    const archive = fs.readFileSync(path.join(t.backups, name));
    const index = await parsedIndex(sidecarOf(t, name));
    const tarStream = zlib.gunzipSync(archive);
    expect(index.archive.size).toBe(archive.length);
    expect(index.envelope).toBe("plain");
    expect([...index.members.keys()]).toEqual(["backup_meta.json", "coffer.db", "settings.yaml", "keys/secret.key", "keys/config.key", ...t.docs.map((d) => `vault/${d.sha256.slice(0, 2)}/${d.sha256}`).sort()]);
    for (const m of index.members.values()) expect(parseFileHeader(tarStream.subarray(m.offset, m.offset + 512))).toEqual({ name: m.name, size: m.size });
    expect(index.members.get("coffer.db")!.size).toBe(meta.members["coffer.db"].size);
    expect(index.blocks[0]).toEqual({ gzip: 10, tar: 0 });
    for (const b of index.blocks) {
      const from = zlib.inflateRawSync(archive.subarray(b.gzip), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      expect(from.subarray(0, 4096).equals(tarStream.subarray(b.tar, b.tar + 4096))).toBe(true);
    }
  });

  it("changes no byte of the archive, which tar xzf and the reader still read", async () => {
    const t = await instanceWithVault(2);
    const work = fs.mkdtempSync(path.join(t.inst.paths.tmp, "snap-"));
    const snap = await snapshotDatabase(t.inst, work);
    const now = new Date("2026-12-06T12:00:00Z");
    const pack = async (seekIndex: boolean) => {
      const parts: Buffer[] = [];
      const out = new Writable({ write: (c, _e, cb) => (parts.push(c), cb()) });
      const packed = await packArchive(t.inst, out, { scope: "full", trigger: "manual", now, dbSnapshot: snap, seekIndex });
      return { bytes: Buffer.concat(parts), packed };
    };
    const [without, withIndex] = [await pack(false), await pack(true)];
    fs.rmSync(work, { recursive: true, force: true });
    expect(withIndex.bytes.equals(without.bytes)).toBe(true);
    expect(without.packed.seekIndex).toBeNull();
    expect(withIndex.packed.seekIndex!.toString("latin1")).toContain(`archive ${withIndex.bytes.length} `);

    const { name } = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target });
    const file = path.join(t.backups, name);
    const out = tempDir("coffer-untar-");
    cleanups.push(() => fs.rmSync(out, { recursive: true, force: true }));
    execFileSync("tar", ["xzf", file, "-C", out]);
    for (const d of t.docs) expect(sha256(fs.readFileSync(path.join(out, "vault", d.sha256.slice(0, 2), d.sha256)))).toBe(d.sha256);
    expect(fs.readdirSync(out).sort()).toEqual(["backup_meta.json", "coffer.db", "keys", "settings.yaml", "vault"]);
    const summary = await readArchive(fs.createReadStream(file));
    expect(summary.meta.vault.objects).toBe(t.docs.length);
  });
});

describe("restoring one document by seeking", () => {
  it("reads a small part of a large plain archive (a text document and a 1 MiB one)", async () => {
    const t = await instanceWithVault(30);
    const { name, bytes } = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target });
    expect(bytes).toBeGreaterThan(30 * MiB);
    const contract = t.docs.find((d) => d.name === "contract.txt")!;
    const late = t.docs.at(-2)!;
    forget(t, contract);
    forget(t, late);

    const one = await restoreOne(t, name, contract);
    expect(one.out[0]).toMatchObject({ id: contract.id, name: "contract.txt" });
    expect(liveFileHash(t, contract)).toBe(contract.sha256);
    expect(one.stats).toMatchObject({ index: "used", by_seek: 1, by_pass: 0, misses: [] });
    // A block (1 MiB of input) and the fingerprint's ends, not the 30 MiB.
    expect(one.stats.archive_bytes).toBeLessThan(bytes / 10);

    const two = await restoreOne(t, name, late);
    expect(liveFileHash(t, late)).toBe(late.sha256);
    expect(two.stats).toMatchObject({ by_seek: 1, by_pass: 0 });
    expect(two.stats.archive_bytes).toBeLessThan(bytes / 10);
    console.log(`seek: ${name} is ${bytes} bytes; restoring contract.txt read ${one.stats.archive_bytes} of them (+${one.stats.index_bytes} of index), a 1 MiB document ${two.stats.archive_bytes}`);
  });

  it("reads a small part of a large age-encrypted archive, with an identity and with a passphrase", async () => {
    const t = await instanceWithVault(30);
    const key = generateKey();
    const byKey = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target, encryption: { to: { recipients: [key.recipient] }, record: { mode: "recipients", recipients: [key.recipient] } } });
    const byPass = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target, now: new Date(Date.now() + 2000), encryption: { to: { passphrase: "correct horse", logN: 10 }, record: { mode: "passphrase" } } });
    expect((await parsedIndex(sidecarOf(t, byKey.name))).envelope).toBe("age");
    const contract = t.docs.find((d) => d.name === "contract.txt")!;
    const mid = t.docs[20];
    forget(t, contract);
    forget(t, mid);

    await expect(restoreOne(t, byKey.name, contract)).rejects.toMatchObject({ code: "KEY_REQUIRED" });
    const one = await restoreOne(t, byKey.name, contract, { identities: parseIdentities(key.identity) });
    expect(liveFileHash(t, contract)).toBe(contract.sha256);
    expect(one.stats).toMatchObject({ by_seek: 1, by_pass: 0 });
    expect(one.stats.archive_bytes).toBeLessThan(byKey.bytes / 10);

    const two = await restoreOne(t, byPass.name, mid, { passphrase: "correct horse" });
    expect(liveFileHash(t, mid)).toBe(mid.sha256);
    expect(two.stats).toMatchObject({ by_seek: 1, by_pass: 0 });
    expect(two.stats.archive_bytes).toBeLessThan(byPass.bytes / 10);
    console.log(`seek (age): ${byKey.bytes} bytes; contract.txt read ${one.stats.archive_bytes}, a 1 MiB document ${two.stats.archive_bytes}`);
  });

  it("many documents spread over the archive are read in one pass instead of seeks", async () => {
    const t = await instanceWithVault(8);
    const { name } = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target });
    const chosen = t.docs.filter((_, i) => i % 2 === 0);
    for (const d of chosen) forget(t, d);
    clearBrowseCache(t.inst);
    await restoreDocuments(t.inst, t.admin, null, await storedSource(t.inst, name, t.target), { ids: chosen.map((d) => d.id) });
    for (const d of chosen) expect(liveFileHash(t, d)).toBe(d.sha256);
    expect(lastFetch().get(name)).toMatchObject({ index: "skipped", by_seek: 0, by_pass: chosen.length });
  });
});

describe("an index that does not fit is never trusted", () => {
  async function backupWithout(t: T, doc: { id: number; sha256: string; size: number }) {
    const stored = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target });
    forget(t, doc);
    return { ...stored, sidecar: sidecarOf(t, stored.name), file: path.join(t.backups, stored.name) };
  }
  const memberLine = (doc: { sha256: string }) => new RegExp(`^member (\\d+) (\\d+) vault/${doc.sha256.slice(0, 2)}/${doc.sha256}$`, "m");

  it("another backup's sidecar, or one whose archive changed at its end, is ignored: the one-pass read restores the file", async () => {
    const t = await instanceWithVault(6);
    const doc = t.docs[3];
    const a = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual", target: t.target });
    const b = await backupWithout(t, doc);
    fs.copyFileSync(sidecarOf(t, a.name), b.sidecar); // foreign: another archive's size and ends
    const foreign = await restoreOne(t, b.name, doc);
    expect(liveFileHash(t, doc)).toBe(doc.sha256);
    expect(foreign.stats).toMatchObject({ index: "stale", by_seek: 0, by_pass: 1 });

    // The same size, other bytes in its last 64 KiB (the gzip trailer): stale, so ignored. The document is the
    // archive's first, so the one-pass read stops megabytes before the damage.
    const [first] = scans(t, 0);
    const c = await backupWithout(t, first);
    const bytes = fs.readFileSync(c.file);
    bytes[bytes.length - 5] ^= 0xff;
    fs.chmodSync(c.file, 0o600);
    fs.writeFileSync(c.file, bytes);
    const stale = await restoreOne(t, c.name, first);
    expect(liveFileHash(t, first)).toBe(first.sha256);
    expect(stale.stats).toMatchObject({ index: "stale", by_seek: 0, by_pass: 1 });
  });

  it("a member at a wrong offset, or another member's place under its name, falls back to the one-pass read", async () => {
    const t = await instanceWithVault(6);
    const [other, doc] = scans(t, 1, 3); // the same size (1 MiB): only their headers tell them apart
    const b = await backupWithout(t, doc);
    const original = fs.readFileSync(b.sidecar, "latin1");

    const [line, offset, size] = memberLine(doc).exec(original)!;
    fs.writeFileSync(b.sidecar, original.replace(line, line.replace(`member ${offset} ${size}`, `member ${Number(offset) + 512} ${size}`)));
    const shifted = await restoreOne(t, b.name, doc);
    expect(liveFileHash(t, doc)).toBe(doc.sha256);
    expect(shifted.stats).toMatchObject({ index: "used", by_seek: 0, by_pass: 1 });
    expect(shifted.stats.misses).toEqual([expect.stringMatching(/^the index says vault\/.* starts at \d+, but no file header is there$/)]);

    forget(t, doc);
    const [otherLine] = memberLine(other).exec(original)!;
    const swapped = original
      .replace(line, "@@doc@@")
      .replace(otherLine, line.replace(/^member \d+/, otherLine.split(" ").slice(0, 2).join(" ")))
      .replace("@@doc@@", otherLine.replace(/^member \d+/, line.split(" ").slice(0, 2).join(" ")));
    expect(swapped).not.toBe(original);
    fs.writeFileSync(b.sidecar, swapped);
    const lied = await restoreOne(t, b.name, doc);
    expect(liveFileHash(t, doc)).toBe(doc.sha256);
    expect(lied.stats).toMatchObject({ index: "used", by_seek: 0, by_pass: 1 });
    expect(lied.stats.misses).toEqual([expect.stringContaining(`but vault/${other.sha256.slice(0, 2)}/${other.sha256} (1048576 bytes) is there`)]);

    // A block that does not start where the index says: inflating there fails or gives no header.
    forget(t, doc);
    fs.writeFileSync(b.sidecar, original.replace(/^block (\d+) (\d+)$/gm, (l, g, u) => (Number(u) > 0 ? `block ${Number(g) + 3} ${u}` : l)));
    const offBlock = await restoreOne(t, b.name, doc);
    expect(liveFileHash(t, doc)).toBe(doc.sha256);
    expect(offBlock.stats).toMatchObject({ index: "used", by_seek: 0, by_pass: 1 });
    expect(offBlock.stats.misses).toHaveLength(1);

    // Not an index at all, or one cut short.
    for (const junk of ["not an index\n", original.slice(0, original.lastIndexOf("end "))]) {
      forget(t, doc);
      fs.writeFileSync(b.sidecar, junk);
      const r = await restoreOne(t, b.name, doc);
      expect(liveFileHash(t, doc)).toBe(doc.sha256);
      expect(r.stats).toMatchObject({ index: "unusable", by_seek: 0, by_pass: 1 });
    }
  });

  it("an archive whose header was rewritten to name the wanted document, where the index points, is refused (422) and nothing is written", async () => {
    const t = await instanceWithVault(6);
    // Both 1 MiB, `other` before `doc` in the archive: the one-pass read meets the forged header before the real one.
    const [doc] = scans(t, 5);
    const b = await backupWithout(t, doc);
    const index = await parsedIndex(b.sidecar);
    const docName = `vault/${doc.sha256.slice(0, 2)}/${doc.sha256}`;
    const tarStream = zlib.gunzipSync(fs.readFileSync(b.file));
    const bytes = fs.readFileSync(b.file);
    // Incompressible documents are stored (deflate level 0): a header is in the archive as it is, unless it
    // straddles one of the stored blocks' 5-byte framings (64 KiB apart), so take the first one that does not.
    const found = scans(t, 1, 2, 3, 4) // not the first: its header is in the first 64 KiB, which the index fingerprints
      .map((d) => {
        const at = index.members.get(`vault/${d.sha256.slice(0, 2)}/${d.sha256}`)!.offset;
        const header = Buffer.from(tarStream.subarray(at, at + 512));
        return { d, header, where: bytes.indexOf(header) };
      })
      .find((x) => x.where > 0)!;
    const { d: other, header, where } = found;
    const otherName = `vault/${other.sha256.slice(0, 2)}/${other.sha256}`;
    const forged = Buffer.from(header);
    forged.fill(0, 0, 100).write(docName, 0, "utf8");
    forged.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of forged) sum += x;
    forged.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
    forged.copy(bytes, where);
    fs.chmodSync(b.file, 0o600);
    fs.writeFileSync(b.file, bytes);
    // The index, rewritten to match (someone who can write the backup directory can write both).
    const text = fs.readFileSync(b.sidecar, "latin1");
    const docLine = memberLine(doc).exec(text)![0];
    const otherLine = memberLine(other).exec(text)![0];
    fs.writeFileSync(b.sidecar, text.replace(docLine, docLine.replace(docName, "vault/00/" + "0".repeat(64))).replace(otherLine, otherLine.replace(otherName, docName)));

    const before = t.inst.db.prepare("SELECT count(*) FROM documents").pluck().get();
    await expect(restoreOne(t, b.name, doc)).rejects.toMatchObject({ code: "DOCUMENT_HASH_MISMATCH", status: 422 });
    // The forged header passed the seek's check; the hash did not, and the one-pass read met the forgery first.
    expect(lastFetch().get(b.name)).toMatchObject({ index: "used", by_seek: 0, misses: [expect.stringContaining("does not match its hash")] });
    expect(fs.existsSync(blobPath(t.inst.paths, doc.sha256))).toBe(false);
    expect(t.inst.db.prepare("SELECT count(*) FROM documents").pluck().get()).toBe(before);
    expect(fs.readdirSync(t.inst.paths.tmp).filter((n) => n.startsWith("granular-"))).toEqual([]);
  });
});
