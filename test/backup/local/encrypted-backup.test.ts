import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { Readable } from "node:stream";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeStoredBackup } from "@/lib/backup/local/stored";
import { listStoredBackups, openStoredBackup } from "@/lib/backup/local/repository";
import { stageArchive, discardStaged } from "@/lib/backup/restore/staging";
import { writeArchive } from "@/lib/backup/format/writer";
import { createDocument } from "@/lib/vault/documents";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import { closeInstance, type Instance } from "@/lib/instance";
import { generateKey, parseIdentities, type AgeKeys } from "@/lib/crypto/age";
import { AppError } from "@/lib/errors";
import { makeInstance, makeSetUpInstance, tempDir } from "../../support/instance";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const KEY = generateKey();
const OTHER = generateKey();
let work: string;
beforeAll(() => {
  work = tempDir("coffer-enc-");
  fs.writeFileSync(path.join(work, "key.txt"), `# test key\n${KEY.identity}\n`);
});

async function instanceWith(encryption: { mode: "recipients" | "passphrase"; recipients?: string[]; passphrase?: string }) {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  await createDocument(t.inst, t.admin, null, { name: "secret.txt", body: Readable.from([Buffer.from("the plans")]), maxBytes: 1e6 });
  await createDocument(t.inst, t.member, null, { name: "photo.jpg", body: Readable.from([crypto.randomBytes(300_000)]), maxBytes: 1e6 });
  const s = currentSettings(t.inst.paths.settings);
  saveSettings(t.inst.paths.settings, {
    ...s,
    backup: {
      ...s.backup,
      encryption: { mode: encryption.mode, recipients: encryption.recipients ?? [], passphrase: encryption.passphrase ? encryptSecret(t.inst.configKey, encryption.passphrase) : null },
    },
  });
  return t;
}

async function fresh(): Promise<Instance> {
  const t = makeInstance();
  cleanups.push(t.cleanup);
  return t.inst;
}

async function stageCode(inst: Instance, source: Readable, keys?: AgeKeys): Promise<string> {
  try {
    const p = await stageArchive(inst, source, { keys });
    discardStaged(inst, p.id);
    return "ok";
  } catch (err) {
    return err instanceof AppError ? err.code : `untyped: ${(err as Error).message}`;
  }
}

describe("encrypted backups", () => {
  it("Back up now writes an age file for the recipients, verified without the identity, listed with who it is for", async () => {
    const { inst } = await instanceWith({ mode: "recipients", recipients: [KEY.recipient, OTHER.recipient] });
    const r = await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    expect(r.name).toMatch(/^coffer_full_\d{8}_\d{6}Z\.tar\.gz\.age$/);
    const file = path.join(r.target.location, r.name);
    expect(fs.readFileSync(file).subarray(0, 22).toString()).toBe("age-encryption.org/v1\n");
    const run = inst.db.prepare("SELECT * FROM backup_runs WHERE id = ?").get(r.runId) as { verified: number; sha256: string; encryption: string };
    expect(run.verified).toBe(1);
    expect(run.sha256).toBe(crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex"));
    expect(JSON.parse(run.encryption)).toEqual({ mode: "recipients", recipients: [KEY.recipient, OTHER.recipient] });
    expect((await listStoredBackups(inst))[0]).toMatchObject({ name: r.name, scope: "full", verified: true, encryption: { mode: "recipients", recipients: [KEY.recipient, OTHER.recipient] } });
    // No identity anywhere Coffer wrote.
    for (const f of fs.readdirSync(inst.paths.root, { recursive: true }).map(String)) {
      const p = path.join(inst.paths.root, f);
      if (fs.statSync(p).isFile()) expect(fs.readFileSync(p).includes("AGE-SECRET-KEY-"), f).toBe(false);
    }
  });

  it("Debian's age decrypts it to a valid .tar.gz that tar lists; and a .tar.gz that age -r encrypted restores in Coffer", async () => {
    const { inst } = await instanceWith({ mode: "recipients", recipients: [KEY.recipient] });
    const r = await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    const file = path.join(r.target.location, r.name);
    const plain = path.join(work, "plain.tar.gz");
    execFileSync("age", ["-d", "-i", path.join(work, "key.txt"), "-o", plain, file]);
    const listing = execFileSync("tar", ["tzf", plain]).toString().split("\n");
    expect(listing).toEqual(expect.arrayContaining(["backup_meta.json", "coffer.db", "settings.yaml", "keys/secret.key", "keys/config.key"]));
    expect(await stageCode(await fresh(), fs.createReadStream(plain))).toBe("ok");
    // The other way: a plain Coffer archive, encrypted by the age CLI.
    const theirs = path.join(work, "theirs.tar.gz.age");
    execFileSync("age", ["-r", KEY.recipient, "-o", theirs, plain]);
    const target = await fresh();
    const p = await stageArchive(target, fs.createReadStream(theirs), { keys: { identities: parseIdentities(KEY.identity) } });
    expect(p).toMatchObject({ encrypted: true, scope: "full", vault: { objects: 2 }, tables: { documents: 2 } });
  });

  it("every bad input gets its code, nothing is left in staging, and the instance is unchanged", async () => {
    const { inst } = await instanceWith({ mode: "recipients", recipients: [KEY.recipient] });
    const r = await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    const bytes = fs.readFileSync(path.join(r.target.location, r.name));
    const target = await fresh();
    const ids = { identities: parseIdentities(KEY.identity) };
    const src = (b: Buffer) => Readable.from([b]);
    expect(await stageCode(target, src(bytes))).toBe("KEY_REQUIRED");
    expect(await stageCode(target, src(bytes), { identities: parseIdentities(OTHER.identity) })).toBe("KEY_MISMATCH");
    expect(await stageCode(target, src(bytes), { passphrase: "not it" })).toBe("KEY_REQUIRED");
    expect(await stageCode(target, src(bytes.subarray(0, bytes.length - 100)), ids)).toBe("ARCHIVE_TAMPERED");
    for (const at of [bytes.indexOf("\n---") + 6, Math.floor(bytes.length / 2), bytes.length - 3]) {
      const bad = Buffer.from(bytes);
      bad[at] ^= 0x04;
      expect(await stageCode(target, src(bad), ids), `bit flipped at ${at}`).toBe("ARCHIVE_TAMPERED");
    }
    // An age file whose payload is not a Coffer archive.
    const notCoffer = path.join(work, "random.age");
    fs.writeFileSync(path.join(work, "random.bin"), crypto.randomBytes(100_000));
    execFileSync("age", ["-r", KEY.recipient, "-o", notCoffer, path.join(work, "random.bin")]);
    expect(await stageCode(target, fs.createReadStream(notCoffer), ids)).toBe("ARCHIVE_NOT_GZIP");
    expect(fs.readdirSync(target.paths.staging)).toEqual([]);
    expect(await stageCode(target, src(bytes), ids)).toBe("ok");
  });

  it("with a passphrase: written, decrypted and verified in full after writing, restored with the passphrase", async () => {
    const { inst } = await instanceWith({ mode: "passphrase", passphrase: "correct horse battery staple" });
    const r = await writeStoredBackup(inst, { scope: "db", trigger: "manual" });
    expect(r.name).toMatch(/\.tar\.gz\.age$/);
    expect(fs.readFileSync(path.join(r.target.location, r.name)).toString("latin1", 0, 200)).toMatch(/-> scrypt \S+ 18\n/);
    expect(await stageCode(await fresh(), await openStoredBackup(inst, r.name), { passphrase: "correct horse battery staple" })).toBe("ok");
    expect(await stageCode(await fresh(), await openStoredBackup(inst, r.name), { passphrase: "Correct horse battery staple" })).toBe("KEY_MISMATCH");
    expect(fs.readFileSync(inst.paths.settings, "utf8")).not.toContain("correct horse");
  });

  it("the streamed download and prerestore archives are encrypted too; a plain archive still restores without a key", async () => {
    const { inst, dir } = await instanceWith({ mode: "recipients", recipients: [KEY.recipient] });
    const { streamDownload } = await import("@/lib/backup/jobs/download");
    const d = streamDownload(inst, { id: null, name: "t" }, "full");
    expect(d.name).toMatch(/\.tar\.gz\.age$/);
    const chunks: Buffer[] = [];
    for await (const c of d.stream) chunks.push(c as Buffer);
    expect(await stageCode(await fresh(), Readable.from([Buffer.concat(chunks)]), { identities: parseIdentities(KEY.identity) })).toBe("ok");
    const plainFile = path.join(dir, "plain.tar.gz");
    await writeArchive(inst, fs.createWriteStream(plainFile), { scope: "full", trigger: "manual" });
    expect(await stageCode(await fresh(), fs.createReadStream(plainFile))).toBe("ok");
    // Restoring the plain archive onto this encrypting instance: the prerestore archive of the current state is encrypted.
    const preview = await stageArchive(inst, fs.createReadStream(plainFile));
    const { applyRestore } = await import("@/lib/backup/restore/apply");
    const applied = await applyRestore(inst, preview.id, { id: null, name: "t" });
    cleanups.unshift(() => closeInstance(applied.instance));
    expect(applied.prerestore).toMatch(/^coffer_prerestore_.*\.tar\.gz\.age$/);
  });

  it("coffer verify takes --identity; without it the answer says a key is needed", async () => {
    const { inst } = await instanceWith({ mode: "recipients", recipients: [KEY.recipient] });
    const r = await writeStoredBackup(inst, { scope: "db", trigger: "manual" });
    const file = path.join(r.target.location, r.name);
    const root = inst.paths.root;
    closeInstance(inst);
    const cli = (args: string[]) => spawnSync(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), "--data-dir", root, ...args], { encoding: "utf8", env: { ...process.env, COFFER_DATA_DIR: "" } });
    const noKey = cli(["--json", "verify", file]);
    expect(noKey.status).toBe(1);
    expect(JSON.parse(noKey.stdout).error.code).toBe("KEY_REQUIRED");
    const ok = cli(["verify", file, "--identity", path.join(work, "key.txt")]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("Encrypted:      yes");
  });
});
