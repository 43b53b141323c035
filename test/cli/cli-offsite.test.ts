import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { spawn, execFileSync, spawnSync } from "node:child_process";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDocument } from "@/lib/vault/documents";
import { closeInstance, openInstance } from "@/lib/instance";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import type { S3Location } from "@/lib/backup/offsite/location";
import { makeSetUpInstance, tempDir } from "../support/instance";
import { startS3, type TestS3 } from "../support/s3";

const ROOT = path.resolve(__dirname, "..", "..");

/** The real command, run asynchronously: the S3 server it talks to lives in this process. */
function coffer(args: string[], opts: { env?: Record<string, string>; stdoutFile?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const outFd = opts.stdoutFile ? fs.openSync(opts.stdoutFile, "w") : null;
    const child = spawn(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), ...args], {
      env: { ...process.env, COFFER_DATA_DIR: "", ...opts.env },
      stdio: ["ignore", outFd ?? "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c) => (stdout += c));
    child.stderr!.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => {
      if (outFd !== null) fs.closeSync(outFd);
      resolve({ code, stdout, stderr });
    });
  });
}

let s3: TestS3;
let loc: S3Location;
let source: Awaited<ReturnType<typeof makeSetUpInstance>>;
let work: string;
let env: Record<string, string>;
const contents = [Buffer.from("hello from the offsite CLI test"), crypto.randomBytes(40_000)];

beforeAll(async () => {
  s3 = await startS3();
  loc = await s3.location("cli");
  env = { AWS_ACCESS_KEY_ID: loc.accessKeyId, AWS_SECRET_ACCESS_KEY: loc.secretAccessKey, AWS_ENDPOINT_URL: s3.endpoint };
  source = await makeSetUpInstance();
  for (const [i, body] of contents.entries()) await createDocument(source.inst, source.admin, null, { name: `d${i}`, body: Readable.from([body]), maxBytes: 1e6 });
  const s = currentSettings(source.inst.paths.settings);
  saveSettings(source.inst.paths.settings, {
    ...s,
    backup: {
      ...s.backup,
      offsite: { ...s.backup.offsite, enabled: true, endpoint: s3.endpoint, bucket: loc.bucket, prefix: "cli", access_key_id: loc.accessKeyId, secret_access_key: encryptSecret(source.inst.configKey, loc.secretAccessKey) },
    },
  });
  closeInstance(source.inst);
  work = tempDir("coffer-cli-offsite-");
});
afterAll(async () => {
  source.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
  await s3.close();
});

describe("coffer CLI and the offsite repository", () => {
  it("backup sends the job's result offsite too", async () => {
    const r = await coffer(["--data-dir", source.inst.paths.root, "--json", "backup", "--out", path.join(work, "out")]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.offsite).toMatchObject({ ok: true, uploaded: 2, snapshot: out.name });
  });

  it("snapshots lists the repository, given by --from or configured", async () => {
    const r = await coffer(["snapshots", "--from", `s3://${loc.bucket}/cli`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^coffer_full_\d{8}_\d{6}Z\.tar\.gz\s+\S+ \S+\s+2 documents\s+complete$/m);
    const configured = await coffer(["--data-dir", source.inst.paths.root, "--json", "snapshots"]);
    expect(JSON.parse(configured.stdout)).toHaveLength(1);
  });

  it("export writes a portable full archive to standard output", async () => {
    const file = path.join(work, "full.tar.gz");
    const r = await coffer(["export", "latest", "--from", `s3://${loc.bucket}/cli`], { env, stdoutFile: file });
    expect(r.code, r.stderr).toBe(0);
    const names = execFileSync("tar", ["tzf", file]).toString().split("\n").filter(Boolean);
    const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
    expect(names.filter((n) => n.startsWith("vault/")).sort()).toEqual(contents.map((c) => `vault/${sha(c).slice(0, 2)}/${sha(c)}`).sort());
  });

  it("restore --from brings a fresh data directory back from the bucket", async () => {
    const fresh = path.join(work, "fresh");
    const r = await coffer(["--data-dir", fresh, "restore", "--from", `s3://${loc.bucket}/cli`, "--yes"], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Documents:\s+2/);
    const inst = openInstance(fresh);
    try {
      expect(inst.db.prepare("SELECT name FROM documents ORDER BY name").pluck().all()).toEqual(["d0", "d1"]);
    } finally {
      closeInstance(inst);
    }
  });

  it("the scheduler, the restore pipeline and the CLI load the AWS SDK only when a bucket is used (25 MiB and 200 ms for every process otherwise)", () => {
    for (const mod of ["dist/lib/backup/jobs/scheduler.js", "dist/lib/backup/restore/staging.js", "dist/lib/backup/restore/apply.js", "dist/lib/backup/restore/recovery.js", "dist/cli/coffer.js"]) {
      const r = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(path.join(ROOT, mod))}); console.log(Object.keys(require.cache).some((k) => k.includes("@aws-sdk")))`], { encoding: "utf8" });
      expect(r.stdout.trim(), `${mod}: ${r.stderr}`).toBe("false");
    }
  });

  it("says what is missing instead of guessing", async () => {
    const noEndpoint = await coffer(["snapshots", "--from", `s3://${loc.bucket}/cli`], { env: { ...env, AWS_ENDPOINT_URL: "" } });
    expect(noEndpoint.code).toBe(2);
    expect(noEndpoint.stderr).toMatch(/--endpoint/);
    // The wizard's and Settings' own rules, in the CLI's words: a bucket name S3 would refuse, a metadata address.
    const badBucket = await coffer(["snapshots", "--from", "s3://Not_A_Bucket/cli"], { env });
    expect(badBucket.code).toBe(2);
    expect(badBucket.stderr).toContain("the bucket in s3://BUCKET: Bucket names are 3-63 lowercase letters, digits, dots and hyphens.");
    const metadata = await coffer(["snapshots", "--from", `s3://${loc.bucket}/cli`], { env: { ...env, AWS_ENDPOINT_URL: "http://169.254.169.254" } });
    expect(metadata.code).toBe(2);
    expect(metadata.stderr).toMatch(/^coffer: --endpoint: 169.254.169.254 is a link-local address.*Coffer does not connect there/m);
    const badKey = await coffer(["snapshots", "--from", `s3://${loc.bucket}/cli`], { env: { ...env, AWS_ACCESS_KEY_ID: "NOBODY" } });
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toMatch(/does not know this access key ID\. \(OFFSITE_CREDENTIALS\)/);
  });
});
