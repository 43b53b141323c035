// Makes the golden archives of one Coffer release: node scripts/golden-archives.mjs [CHECKOUT]
//
// CHECKOUT is a built checkout of the release (default: this one; for an old
// release, `git worktree add /tmp/rel v0.1.0 && (cd /tmp/rel && npm ci)`).
// Its own server and CLI make a small instance the way a user would (the
// setup API, sign-in, uploads), then `coffer backup` writes each scope, plain
// and (where that release has encryption) encrypted. The archives and an
// expected.json land in test/fixtures/golden/<app>-schema<N>/; committed
// golden folders are never edited or regenerated, a release adds its own.
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import crypto from "node:crypto";
import net from "node:net";
import { spawn, execFileSync } from "node:child_process";
import YAML from "yaml";
import Database from "better-sqlite3";

const ROOT = path.resolve(import.meta.dirname, "..");
const checkout = path.resolve(process.argv[2] ?? ROOT);
const cli = (dataDir, ...args) => execFileSync(process.execPath, [path.join(checkout, "bin", "coffer.cjs"), "--data-dir", dataDir, ...args], { cwd: checkout, encoding: "utf8" });

const ADMIN = { username: "golden-admin", password: "golden-password-1" };
const INSTANCE_NAME = "Golden";
const SETUP_CODE = "GOLDEN-CODE-0001";
// Fixed contents: the archives stay small and the same documents every release.
const seeded = (seed, n) => {
  const out = Buffer.alloc(n);
  let h = crypto.createHash("sha256").update(seed).digest();
  for (let i = 0; i < n; i += 32) {
    h.copy(out, i);
    h = crypto.createHash("sha256").update(h).digest();
  }
  return out;
};
const notes = Buffer.from("Kept for the golden archives.\n".repeat(40));
const DOCUMENTS = [
  { name: "notes.txt", body: notes },
  { name: "photo.jpg", body: seeded("photo", 48 * 1024) },
  { name: "notes-copy.txt", body: notes }, // same content: one blob, two documents
];

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startServer(dataDir) {
  const port = await freePort();
  const proc = spawn(process.execPath, [path.join(checkout, "scripts", "start.mjs")], {
    cwd: checkout,
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", COFFER_DATA_DIR: dataDir, COFFER_SETUP_TOKEN: SETUP_CODE, NEXT_TELEMETRY_DISABLED: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let log = "";
  proc.stdout.on("data", (d) => (log += d));
  proc.stderr.on("data", (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (proc.exitCode !== null) throw new Error(`the server stopped:\n${log}`);
    try {
      if ((await fetch(`${url}/api/health`)).ok) return { url, stop: () => stopServer(proc) };
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the server did not answer:\n${log}`);
}

async function stopServer(proc) {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  process.kill(-proc.pid, "SIGTERM");
  await exited;
}

async function signIn(url) {
  const jar = new Map();
  const keep = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      jar.set(pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1));
    }
  };
  const csrf = await fetch(`${url}/api/auth/csrf`);
  keep(csrf);
  const { csrfToken } = await csrf.json();
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const res = await fetch(`${url}/api/auth/callback/credentials`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookie() },
    body: new URLSearchParams({ csrfToken, ...ADMIN, json: "true" }),
  });
  keep(res);
  if (![...jar.keys()].some((k) => k.endsWith("next-auth.session-token"))) throw new Error("sign-in failed");
  return cookie();
}

/** Turn archive encryption on by editing settings.yaml, as an admin could. */
function setEncryption(dataDir, encryption) {
  const file = path.join(dataDir, "settings.yaml");
  const doc = YAML.parse(fs.readFileSync(file, "utf8"));
  doc.backup = { ...doc.backup, encryption: { recipients: [], passphrase: null, ...encryption } };
  fs.writeFileSync(file, YAML.stringify(doc), { mode: 0o600 });
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-golden-"));
const dataDir = path.join(work, "data");
try {
  const server = await startServer(dataDir);
  try {
    const setup = await fetch(`${server.url}/api/setup`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-setup-token": SETUP_CODE },
      body: JSON.stringify({ token: SETUP_CODE, instance_name: INSTANCE_NAME, ...ADMIN }),
    });
    if (setup.status !== 201) throw new Error(`setup answered ${setup.status}: ${await setup.text()}`);
    const cookie = await signIn(server.url);
    for (const d of DOCUMENTS) {
      const res = await fetch(`${server.url}/api/documents?name=${encodeURIComponent(d.name)}`, { method: "POST", headers: { cookie }, body: d.body });
      if (res.status !== 201) throw new Error(`upload of ${d.name} answered ${res.status}: ${await res.text()}`);
    }
  } finally {
    await server.stop();
  }

  const version = JSON.parse(fs.readFileSync(path.join(checkout, "package.json"), "utf8")).version;
  const db = new Database(path.join(dataDir, "coffer.db"), { readonly: true });
  const schema = db.pragma("user_version", { simple: true });
  db.close();
  const out = path.join(ROOT, "test", "fixtures", "golden", `${version}-schema${schema}`);
  if (fs.existsSync(out)) throw new Error(`${path.relative(ROOT, out)} exists: golden archives are never regenerated. A release with a new schema makes a new folder.`);
  fs.mkdirSync(out, { recursive: true });

  const archives = [];
  const backup = (scope, encrypted) => {
    const before = new Set(fs.readdirSync(out));
    cli(dataDir, "backup", "--scope", scope, "--out", out);
    const name = fs.readdirSync(out).find((f) => !before.has(f));
    archives.push({ file: name, scope, encrypted });
  };
  for (const scope of ["full", "db", "vault"]) backup(scope, null);
  const usage = cli(dataDir, "--help");
  if (/encrypted backup/.test(usage)) {
    // This release encrypts: the test identity goes next to the archives (it protects nothing else).
    const identity = execFileSync("age-keygen", { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const recipient = /public key: (age1\w+)/.exec(identity)[1];
    fs.writeFileSync(path.join(out, "identity.txt"), identity);
    setEncryption(dataDir, { mode: "recipients", recipients: [recipient] });
    for (const scope of ["full", "db"]) backup(scope, "identity");
    const passphrase = "golden passphrase, test only";
    fs.writeFileSync(path.join(out, "passphrase.txt"), passphrase + "\n");
    setEncryption(dataDir, { mode: "passphrase", passphrase });
    backup("full", "passphrase");
  }

  const expected = {
    made_by: { app_version: version, schema_version: schema, format_version: 1, commit: execFileSync("git", ["-C", checkout, "rev-parse", "HEAD"], { encoding: "utf8" }).trim() },
    instance_name: INSTANCE_NAME,
    admin: ADMIN,
    documents: DOCUMENTS.map((d) => ({ name: d.name, size: d.body.length, sha256: crypto.createHash("sha256").update(d.body).digest("hex") })),
    archives,
  };
  fs.writeFileSync(path.join(out, "expected.json"), JSON.stringify(expected, null, 2) + "\n");
  // The pins test/backup/format/golden.test.ts checks: a release adds its files, none is ever changed.
  const pinsFile = path.join(ROOT, "test", "fixtures", "golden.sha256.json");
  const pins = fs.existsSync(pinsFile) ? JSON.parse(fs.readFileSync(pinsFile, "utf8")) : {};
  for (const f of fs.readdirSync(out).sort()) pins[`${path.basename(out)}/${f}`] = crypto.createHash("sha256").update(fs.readFileSync(path.join(out, f))).digest("hex");
  fs.writeFileSync(pinsFile, JSON.stringify(Object.fromEntries(Object.entries(pins).sort()), null, 2) + "\n");
  console.log(`Wrote ${archives.length} archives to ${path.relative(ROOT, out)}:`);
  for (const a of archives) console.log(`  ${a.file} (${fs.statSync(path.join(out, a.file)).size} bytes)`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
