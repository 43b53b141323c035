import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { describe, it, expect } from "vitest";
import { makeInstance } from "../../support/instance";
import { stageArchive } from "@/lib/backup/restore/staging";
import { applyRestore } from "@/lib/backup/restore/apply";
import { parseIdentities, type AgeKeys } from "@/lib/crypto/age";
import { verifyPassword } from "@/lib/auth/password";
import { getMeta } from "@/lib/db/connection";
import { SCHEMA_VERSION } from "@/lib/db/migrations";
import { currentSettings } from "@/lib/settings/store";
import { blobPath } from "@/lib/vault/blobs";
import { closeInstance } from "@/lib/instance";

/**
 * Every archive a released Coffer made (test/fixtures/golden, written by
 * scripts/golden-archives.mjs with that release's own server and CLI) is
 * restored onto a fresh instance of this build through the real pipeline:
 * a migration or format change that breaks an old backup fails here.
 */
const GOLDEN = path.join(__dirname, "..", "..", "fixtures", "golden");

interface Expected {
  made_by: { app_version: string; schema_version: number; format_version: number };
  instance_name: string;
  admin: { username: string; password: string };
  documents: { name: string; size: number; sha256: string }[];
  archives: { file: string; scope: "full" | "db" | "vault"; encrypted: "identity" | "passphrase" | null }[];
}

const releases = fs.readdirSync(GOLDEN).sort();

function keysFor(dir: string, encrypted: Expected["archives"][number]["encrypted"]): AgeKeys | undefined {
  if (encrypted === "identity") return { identities: parseIdentities(fs.readFileSync(path.join(dir, "identity.txt"), "utf8")) };
  if (encrypted === "passphrase") return { passphrase: fs.readFileSync(path.join(dir, "passphrase.txt"), "utf8").split("\n")[0] };
  return undefined;
}

describe.each(releases)("golden archives of %s", (release) => {
  const dir = path.join(GOLDEN, release);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, "expected.json"), "utf8")) as Expected;

  it("holds every scope the release could write", () => {
    expect(new Set(expected.archives.map((a) => a.scope))).toEqual(new Set(["full", "db", "vault"]));
    for (const a of expected.archives) expect(fs.existsSync(path.join(dir, a.file)), a.file).toBe(true);
  });

  it.each(expected.archives.map((a) => [a.file, a] as const))("%s restores onto this build", async (_file, archive) => {
    const t = makeInstance();
    let live = t.inst;
    try {
      const preview = await stageArchive(t.inst, fs.createReadStream(path.join(dir, archive.file)), { keys: keysFor(dir, archive.encrypted) });
      expect(preview).toMatchObject({ scope: archive.scope, app_version: expected.made_by.app_version, schema_version: expected.made_by.schema_version, encrypted: !!archive.encrypted });
      const blobs = new Set(expected.documents.map((d) => d.sha256));
      expect(preview.vault.objects).toBe(archive.scope === "db" ? 0 : blobs.size);
      if (archive.scope !== "vault" && expected.made_by.schema_version < SCHEMA_VERSION) expect(preview.upgrade).toMatch(new RegExp(`schema ${expected.made_by.schema_version}.*upgraded.*${SCHEMA_VERSION}`));
      else expect(preview.upgrade).toBeNull();

      if (archive.scope === "vault") {
        await expect(applyRestore(t.inst, preview.id, { id: null, name: "setup" })).rejects.toMatchObject({ code: "SCOPE_NOT_RESTORABLE" });
        return;
      }
      const { instance } = await applyRestore(t.inst, preview.id, { id: null, name: "setup" });
      live = instance;
      const db = instance.db;
      expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.pragma("foreign_key_check")).toEqual([]);
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");

      // Accounts: the admin signs in with the password they had.
      const admin = db.prepare("SELECT role, password_hash FROM users WHERE username = ?").get(expected.admin.username) as { role: string; password_hash: string };
      expect(admin.role).toBe("admin");
      expect(await verifyPassword(expected.admin.password, admin.password_hash)).toBe(true);

      // Documents: every row, and for a full backup every byte.
      const docs = db.prepare("SELECT name, size, sha256 FROM documents ORDER BY id").all();
      expect(docs).toEqual(expected.documents);
      for (const d of expected.documents) {
        const file = blobPath(instance.paths, d.sha256);
        if (archive.scope === "full") expect(crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex")).toBe(d.sha256);
        else expect(fs.existsSync(file)).toBe(false);
      }

      // Settings: the archive's own, valid for this build.
      expect(getMeta(db, "instance_name")).toBe(expected.instance_name);
      const settings = currentSettings(instance.paths.settings);
      expect(settings.backup.encryption.mode).toBe(archive.encrypted === "identity" ? "recipients" : archive.encrypted ?? "off");
    } finally {
      closeInstance(live);
      fs.rmSync(t.dir, { recursive: true, force: true });
    }
  });
});

it("golden archives are never edited: each folder's files are as the release wrote them", () => {
  // expected.json names each archive; an edited archive would have to be renamed to dodge this, so also pin their bytes.
  const pins = JSON.parse(fs.readFileSync(path.join(GOLDEN, "..", "golden.sha256.json"), "utf8")) as Record<string, string>;
  const actual: Record<string, string> = {};
  for (const release of releases) {
    for (const f of fs.readdirSync(path.join(GOLDEN, release)).sort()) {
      actual[`${release}/${f}`] = crypto.createHash("sha256").update(fs.readFileSync(path.join(GOLDEN, release, f))).digest("hex");
    }
  }
  expect(actual).toEqual(pins);
});
