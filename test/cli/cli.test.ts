import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { spawnSync } from "node:child_process";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDocument } from "@/lib/vault/documents";
import { closeInstance } from "@/lib/instance";
import { makeSetUpInstance, tempDir } from "../support/instance";

const ROOT = path.resolve(__dirname, "..", "..");

/** The real command, as an operator runs it: plain Node on the compiled CLI. */
function coffer(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), ...args], { encoding: "utf8", input, env: { ...process.env, COFFER_DATA_DIR: "" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let source: Awaited<ReturnType<typeof makeSetUpInstance>>;
let work: string;

beforeAll(async () => {
  source = await makeSetUpInstance();
  await createDocument(source.inst, source.admin, null, { name: "a.txt", body: Readable.from([Buffer.from("hello from the CLI test")]), maxBytes: 1e6 });
  await createDocument(source.inst, source.member, null, { name: "b.bin", body: Readable.from([crypto.randomBytes(20000)]), maxBytes: 1e6 });
  closeInstance(source.inst); // the CLI is another process: leave the data dir to it
  work = tempDir("coffer-cli-");
});
afterAll(() => {
  source.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

describe("coffer CLI round trip", () => {
  let archive: string;

  it("backup writes a verified archive, with progress on stderr and JSON on stdout", () => {
    const r = coffer(["--data-dir", source.inst.paths.root, "--json", "backup", "--out", path.join(work, "out")]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ verified: true });
    expect(out.name).toMatch(/^coffer_full_\d{8}_\d{6}Z\.tar\.gz$/);
    expect(r.stderr).toMatch(/Backing up: 100%/);
    archive = out.file;
    expect(fs.existsSync(archive)).toBe(true);
  });

  it("list shows stored backups", () => {
    const made = coffer(["--data-dir", source.inst.paths.root, "backup", "--scope", "db"]);
    expect(made.code, made.stderr).toBe(0);
    const r = coffer(["--data-dir", source.inst.paths.root, "--json", "list"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).map((b: { scope: string }) => b.scope)).toEqual(["db"]);
  });

  it("verify accepts the archive and fails with the right code on a flipped byte", () => {
    const ok = coffer(["--data-dir", source.inst.paths.root, "verify", archive]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("is a valid Coffer backup");
    const flipped = path.join(work, "flipped.tar.gz");
    const bytes = fs.readFileSync(archive);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    fs.writeFileSync(flipped, bytes);
    const bad = coffer(["--data-dir", source.inst.paths.root, "--json", "verify", flipped]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).error.code).toMatch(/CHECKSUM_MISMATCH|ARCHIVE_CORRUPT/);
  });

  it("drill proves the newest backup with its recovery time; verify --all re-reads every stored backup and exits 1 on damage", () => {
    const root = source.inst.paths.root;
    const dbOnly = coffer(["--data-dir", root, "drill"]);
    expect(dbOnly.code).toBe(1);
    expect(dbOnly.stdout).toMatch(/^Restore drill SKIPPED: The stored backups hold the database only/);
    expect(coffer(["--data-dir", root, "backup"]).code).toBe(0);
    const drill = coffer(["--data-dir", root, "--json", "drill"]);
    expect(drill.code, drill.stderr).toBe(0);
    const d = JSON.parse(drill.stdout);
    expect(d).toMatchObject({ status: "success", source: "local", detail: { documents: 2, accounts: 2 } });
    expect(d.seconds).toBeGreaterThan(0);
    const text = coffer(["--data-dir", root, "drill"]);
    expect(text.stdout).toMatch(/^Restore proven: coffer_full_\S+ \(local\) restored in [\d.]+ s/);

    const all = coffer(["--data-dir", root, "verify", "--all"]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout.split("\n").filter((l) => /^OK {6}local {4}coffer_(full|db)_\S+\.tar\.gz/.test(l))).toHaveLength(2);
    const stored = path.join(root, "backups", fs.readdirSync(path.join(root, "backups")).find((f) => f.startsWith("coffer_full_"))!);
    const bytes = fs.readFileSync(stored);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    fs.writeFileSync(stored, bytes);
    const bad = coffer(["--data-dir", root, "--json", "verify", "--all"]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).objects.map((c: { object: string; ok: number }) => [c.object.slice(0, 12), c.ok]).sort()).toEqual([["coffer_db_20", 1], ["coffer_full_", 0]]);
    const failedDrill = coffer(["--data-dir", root, "drill"]);
    expect(failedDrill.code).toBe(1);
    expect(failedDrill.stdout).toMatch(/^Restore drill SKIPPED: The stored backups hold the database only/);
  });

  it("restore into a fresh data dir, then doctor --deep is clean", () => {
    const fresh = path.join(work, "fresh");
    const noYes = coffer(["--data-dir", fresh, "restore", archive], "");
    expect(noYes.code).toBe(1); // no terminal to say yes: nothing restored
    expect(noYes.stderr).toContain("Not restored");
    const r = coffer(["--data-dir", fresh, "restore", archive, "--yes"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Restored the backup of");
    const doctor = coffer(["--data-dir", fresh, "--json", "doctor", "--deep"]);
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(JSON.parse(doctor.stdout).findings.every((f: { severity: string }) => f.severity === "ok")).toBe(true);
    const list = coffer(["--data-dir", fresh, "setup-code"]);
    expect(list.code).toBe(1); // restored instances are set up
  });

  it("usage errors exit 2; a missing instance is a clear failure", () => {
    expect(coffer(["frobnicate"]).code).toBe(2);
    expect(coffer(["--nope"]).code).toBe(2);
    expect(coffer(["backup", "--scope", "everything", "--data-dir", source.inst.paths.root]).code).toBe(2);
    const missing = coffer(["--data-dir", path.join(work, "nothing-here"), "doctor"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("There is no Coffer instance");
  });
});
