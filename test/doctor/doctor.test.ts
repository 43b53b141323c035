import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { runDoctor, doctorDataDir, worst, type Finding } from "@/lib/doctor/index";
import { createDocument } from "@/lib/vault/documents";
import { blobPath } from "@/lib/vault/blobs";
import { generateKey } from "@/lib/crypto/age";
import { makeSetUpInstance, tempDir } from "../support/instance";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

async function instanceWithDocs() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  const a = await createDocument(t.inst, t.admin, null, { name: "a.txt", body: Readable.from([Buffer.from("alpha ".repeat(1000))]), maxBytes: 1e6 });
  const b = await createDocument(t.inst, t.member, null, { name: "b.bin", body: Readable.from([crypto.randomBytes(5000)]), maxBytes: 1e6 });
  return { ...t, a, b };
}

const bad = (findings: Finding[]) => Object.fromEntries(findings.filter((f) => f.severity !== "ok").map((f) => [f.check, f.count]));

describe("doctor", () => {
  it("reports clean data as ok, quick and deep", async () => {
    const { inst } = await instanceWithDocs();
    expect(bad((await runDoctor(inst)).findings)).toEqual({});
    const deep = await runDoctor(inst, { deep: true });
    expect(bad(deep.findings)).toEqual({});
    expect(worst(deep.findings)).toBe("ok");
    expect(deep.findings.map((f) => f.check)).toEqual(expect.arrayContaining(["database.quick_check", "vault.corrupt", "usage.counters"]));
  });

  it("finds a deleted blob", async () => {
    const { inst, a } = await instanceWithDocs();
    fs.rmSync(blobPath(inst.paths, a.sha256));
    const r = await runDoctor(inst, { deep: true });
    expect(bad(r.findings)).toEqual({ "vault.missing": 1 });
    expect(r.findings.find((f) => f.check === "vault.missing")!.examples[0]).toContain("a.txt");
  });

  it("finds a corrupted blob", async () => {
    const { inst, b } = await instanceWithDocs();
    const file = blobPath(inst.paths, b.sha256);
    const bytes = fs.readFileSync(file);
    bytes[10] ^= 0xff;
    fs.writeFileSync(file, bytes);
    expect(bad((await runDoctor(inst, { deep: true })).findings)).toEqual({ "vault.corrupt": 1 });
  });

  it("finds an untracked blob and --fix moves it to lost+found, never deleting it", async () => {
    const { inst } = await instanceWithDocs();
    const stray = crypto.randomBytes(100);
    const sha = crypto.createHash("sha256").update(stray).digest("hex");
    fs.mkdirSync(path.dirname(blobPath(inst.paths, sha)), { recursive: true, mode: 0o700 });
    fs.writeFileSync(blobPath(inst.paths, sha), stray, { mode: 0o600 });
    expect(bad((await runDoctor(inst, { deep: true })).findings)).toEqual({ "vault.untracked": 1 });
    const fixed = await runDoctor(inst, { deep: true, fix: true });
    expect(fixed.fixed.join(" ")).toMatch(/moved 1 untracked file/);
    expect(bad(fixed.findings)).toEqual({});
    const lost = path.join(inst.paths.root, "lost+found");
    const [stamp] = fs.readdirSync(lost);
    expect(fs.readFileSync(path.join(lost, stamp, sha.slice(0, 2), sha))).toEqual(stray);
  });

  it("finds a storage counter off by one and --fix recomputes it, and nothing else", async () => {
    const { inst, member, a, b } = await instanceWithDocs();
    inst.db.prepare("UPDATE users SET used_bytes = used_bytes + 1 WHERE id = ?").run(member.id);
    fs.rmSync(blobPath(inst.paths, a.sha256)); // not safe to fix: must stay reported
    expect(bad((await runDoctor(inst, { deep: true })).findings)).toEqual({ "usage.counters": 1, "vault.missing": 1 });
    const r = await runDoctor(inst, { deep: true, fix: true });
    expect(r.fixed).toEqual(["recomputed the storage counter of 1 user(s)"]);
    expect(bad(r.findings)).toEqual({ "vault.missing": 1 });
    expect(inst.db.prepare("SELECT used_bytes FROM users WHERE id = ?").pluck().get(member.id)).toBe(b.size);
  });

  it("finds a truncated database file", async () => {
    const { inst } = await instanceWithDocs();
    inst.db.pragma("wal_checkpoint(TRUNCATE)");
    inst.db.close();
    const size = fs.statSync(inst.paths.db).size;
    fs.truncateSync(inst.paths.db, Math.floor(size / 2));
    const report = await doctorDataDir(inst.paths.root, { deep: true });
    expect(worst(report.findings)).toBe("fail");
    expect(report.findings.filter((f) => f.severity === "fail").map((f) => f.check)).toEqual([expect.stringMatching(/^database\./)]);
  });

  it("a data directory with no instance is a finding, not a crash", async () => {
    const report = await doctorDataDir(path.join(tempDir(), "nothing"));
    expect(report.findings).toMatchObject([{ check: "instance", severity: "fail", message: expect.stringContaining("There is no Coffer instance") }]);
  });

  it("warns when a backup recipient in settings.yaml does not parse (a typo in a hand edit)", async () => {
    const { inst } = await instanceWithDocs();
    const good = generateKey().recipient;
    const typo = good.slice(0, -1) + (good.endsWith("q") ? "p" : "q"); // right shape, wrong checksum
    fs.writeFileSync(inst.paths.settings, `backup:\n  encryption:\n    mode: recipients\n    recipients: [${typo}]\n`);
    const r = await runDoctor(inst);
    expect(bad(r.findings)).toEqual({ encryption: 1 });
    expect(r.findings.find((f) => f.check === "encryption")!.examples[0]).toContain("not a valid age public key");
  });

  it("the deep check finds a document file others can read, and --fix makes it private without touching its bytes", async () => {
    const { inst } = await instanceWithDocs();
    const sha = inst.db.prepare("SELECT sha256 FROM documents LIMIT 1").pluck().get() as string;
    const blob = blobPath(inst.paths, sha);
    expect(fs.statSync(blob).mode & 0o777).toBe(0o600);
    const bytes = fs.readFileSync(blob);
    fs.chmodSync(blob, 0o644);
    fs.chmodSync(path.dirname(blob), 0o755);
    expect(bad((await runDoctor(inst)).findings)).toEqual({}); // the quick check looks at the top level only
    const found = (await runDoctor(inst, { deep: true })).findings.find((f) => f.check === "files.mode")!;
    expect(found.count).toBe(2);
    expect(found.examples.join(" ")).toContain(`vault/${sha.slice(0, 2)}/${sha} has mode 644`);
    expect(bad((await runDoctor(inst, { deep: true, fix: true })).findings)).toEqual({});
    expect(fs.statSync(blob).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(blob)).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(blob).equals(bytes)).toBe(true);
  });

  it("finds key files with the wrong mode and --fix makes them 0600", async () => {
    const { inst } = await instanceWithDocs();
    fs.chmodSync(inst.paths.secretKey, 0o644);
    expect(bad((await runDoctor(inst)).findings)).toEqual({ "files.mode": 1 });
    expect(bad((await runDoctor(inst, { fix: true })).findings)).toEqual({});
  });
});
