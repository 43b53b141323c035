import fs from "node:fs";
import path from "node:path";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { openInstance, closeInstance, KEY_BYTES, type Instance } from "../instance";
import { LAYOUT } from "../layout";
import { sha256File } from "../backup/format/db-snapshot";
import { acquireLock } from "../lock";
import { parseRecipient } from "../crypto/age";
import { decryptSecret, isEncryptedSecret } from "../settings/secrets";
import { SCHEMA_VERSION } from "../db/migrations";
import { readSettingsFile } from "../settings/store";
import { SHA256_RE, referencedHashes } from "../vault/blobs";
import { pinBlobs } from "../vault/pins";
import { keptBlobs } from "../continuous/kept";
import { fsyncDir } from "../util/fsatomic";
import { describeMode, makePrivate, openModes, openModesSync, PRIVATE_DIR_MODE } from "../util/modes";
import { readText, writeText } from "../db/job-state";

export type Severity = "ok" | "warn" | "fail";

export interface Finding {
  check: string;
  severity: Severity;
  count: number;
  message: string;
  examples: string[];
}

export interface DoctorReport {
  at: string;
  deep: boolean;
  findings: Finding[];
  fixed: string[];
}

const MAX_EXAMPLES = 5;

function finding(check: string, problems: string[], severity: Severity, okMessage: string, badMessage: (n: number) => string): Finding {
  return problems.length
    ? { check, severity, count: problems.length, message: badMessage(problems.length), examples: problems.slice(0, MAX_EXAMPLES) }
    : { check, severity: "ok", count: 0, message: okMessage, examples: [] };
}

/** Recipients that do not parse (a bad checksum in a hand edit), or a passphrase keys/config.key cannot decrypt. */
function encryptionProblems(inst: Instance): string[] {
  let e;
  try {
    e = readSettingsFile(inst.paths.settings).backup.encryption;
  } catch {
    return []; // the settings check reports it
  }
  const problems = e.recipients.filter((r) => !parseRecipient(r)).map((r) => `${r} is not a valid age public key`);
  if (e.mode === "passphrase" && e.passphrase && isEncryptedSecret(e.passphrase)) {
    try {
      decryptSecret(inst.configKey, e.passphrase);
    } catch {
      problems.push("the passphrase cannot be decrypted with keys/config.key");
    }
  }
  return problems;
}

function modesFinding(inst: Instance, open: string[]): Finding {
  return finding(
    "files.mode",
    open.map((p) => describeMode(inst.paths.root, p)),
    "warn",
    "The data directory is readable by its owner only.",
    (n) => `${n} file(s) or folder(s) in the data directory can be read by other users of this machine (coffer doctor --fix makes them private).`,
  );
}

/** Quick checks: cheap enough to run after every restore (a failure rolls it back) and on demand. */
export function quickChecks(inst: Instance): Finding[] {
  const out: Finding[] = [];
  const qc = inst.db.pragma("quick_check") as { quick_check: string }[];
  const qcProblems = qc.map((r) => r.quick_check).filter((r) => r !== "ok");
  out.push(finding("database.quick_check", qcProblems, "fail", "SQLite quick_check: ok.", (n) => `SQLite quick_check found ${n} problem(s).`));
  const fk = inst.db.pragma("foreign_key_check") as { table: string; rowid: number; parent: string }[];
  out.push(
    finding(
      "database.foreign_keys",
      fk.map((r) => `${r.table} row ${r.rowid} → missing ${r.parent}`),
      "fail",
      "Foreign keys: ok.",
      (n) => `${n} row(s) point at rows that do not exist.`,
    ),
  );
  const version = inst.db.pragma("user_version", { simple: true }) as number;
  out.push(
    version === SCHEMA_VERSION
      ? { check: "database.schema", severity: "ok", count: 0, message: `Schema version ${version}.`, examples: [] }
      : {
          check: "database.schema",
          severity: version > SCHEMA_VERSION ? "warn" : "fail",
          count: 1,
          message: `Schema version ${version}; this Coffer knows ${SCHEMA_VERSION}.`,
          examples: [],
        },
  );
  try {
    readSettingsFile(inst.paths.settings);
    out.push({ check: "settings", severity: "ok", count: 0, message: "settings.yaml is valid.", examples: [] });
  } catch (err) {
    out.push({ check: "settings", severity: "fail", count: 1, message: (err as Error).message, examples: [] });
  }
  const keyProblems: string[] = [];
  for (const k of [inst.paths.secretKey, inst.paths.configKey]) {
    const st = fs.statSync(k, { throwIfNoEntry: false });
    if (!st) keyProblems.push(`${path.basename(k)} is missing`);
    else if (st.size !== KEY_BYTES) keyProblems.push(`${path.basename(k)} is ${st.size} bytes, not ${KEY_BYTES}`);
  }
  out.push(finding("keys", keyProblems, "fail", "Key files present, 32 bytes each.", (n) => `${n} key file(s) missing or the wrong size.`));
  out.push(finding("encryption", encryptionProblems(inst), "warn", "Backup encryption settings are usable.", (n) => `${n} problem(s) with backup encryption: backups would fail.`));
  out.push(modesFinding(inst, openModesSync(inst.paths)));
  return out;
}

/** Every file under the vault as a path relative to it. */
async function vaultFiles(vault: string): Promise<string[]> {
  const out: string[] = [];
  for (const top of fs.existsSync(vault) ? await fs.promises.readdir(vault, { withFileTypes: true }) : []) {
    const p = path.join(vault, top.name);
    if (!top.isDirectory()) out.push(top.name);
    else for (const f of await fs.promises.readdir(p)) out.push(`${top.name}/${f}`);
  }
  return out;
}

/** Give other requests a turn this often: the deep check must never hold the server's event loop. */
const YIELD_EVERY = 256;
const HASH_LANES = 3;

/**
 * Deep checks: every blob read and hashed. Minutes on a large vault, so
 * weekly and on demand; asynchronous throughout, so the server keeps answering.
 */
export async function deepChecks(inst: Instance): Promise<Finding[]> {
  const docs = inst.db.prepare("SELECT id, name, size, sha256 FROM documents").all() as { id: number; name: string; size: number; sha256: string }[];
  const missing: string[] = [];
  const wrongSize: string[] = [];
  const referenced = new Set<string>();
  let n = 0;
  for (const d of docs) {
    if (++n % YIELD_EVERY === 0) await yieldToLoop();
    referenced.add(d.sha256);
    const file = path.join(inst.paths.vault, d.sha256.slice(0, 2), d.sha256);
    const st = await fs.promises.stat(file).catch(() => null);
    if (!st) missing.push(`document ${d.id} (${d.name})`);
    else if (st.size !== d.size) wrongSize.push(`document ${d.id} (${d.name}): ${st.size} bytes on disk, ${d.size} recorded`);
  }
  const corrupt: string[] = [];
  const untracked: string[] = [];
  const toHash: string[] = [];
  // Files of erased documents kept for the continuous window are hashed like the rest (a restore to that time needs them).
  for (const sha of keptBlobs(inst)) referenced.add(sha);
  for (const rel of await vaultFiles(inst.paths.vault)) {
    const [dir, name] = rel.split("/");
    if (!name || !SHA256_RE.test(name) || dir !== name.slice(0, 2) || !referenced.has(name)) untracked.push(rel);
    else toHash.push(rel);
  }
  // A few files at once, each with its own reused buffer: one file's read overlaps another's hashing.
  let next = 0;
  await Promise.all(
    Array.from({ length: HASH_LANES }, async () => {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      while (next < toHash.length) {
        const rel = toHash[next++];
        const { sha256 } = await sha256File(path.join(inst.paths.vault, rel), buf).catch(() => ({ sha256: null }));
        if (sha256 !== rel.split("/")[1]) corrupt.push(rel);
      }
    }),
  );
  corrupt.sort();
  const counters = (
    inst.db
      .prepare(
        `SELECT u.username, u.used_bytes, COALESCE((SELECT sum(size) FROM documents d WHERE d.owner_id = u.id), 0) AS actual FROM users u`,
      )
      .all() as { username: string; used_bytes: number; actual: number }[]
  )
    .filter((r) => r.used_bytes !== r.actual)
    .map((r) => `${r.username}: ${r.used_bytes} recorded, ${r.actual} actual`);
  return [
    finding("vault.missing", missing, "fail", "Every document's file is in the vault.", (n) => `${n} document(s) have no file in the vault.`),
    finding("vault.size", wrongSize, "fail", "Every file has the size its document records.", (n) => `${n} file(s) have the wrong size.`),
    finding("vault.corrupt", corrupt, "fail", "Every file's content matches its name (SHA-256).", (n) => `${n} file(s) are damaged: their content does not match their name.`),
    finding("vault.untracked", untracked, "warn", "No stray files in the vault.", (n) => `${n} file(s) in the vault belong to no document.`),
    finding("usage.counters", counters, "warn", "Storage counters match the documents.", (n) => `${n} user(s) have a storage counter that is off.`),
    modesFinding(inst, await openModes(inst.paths, true)),
  ];
}

/**
 * Repairs only what is safe: storage counters recomputed, untracked blobs
 * moved (never deleted) to data/lost+found/<time>/, group and other
 * permissions removed from everything in the data directory.
 */
async function fixSafe(inst: Instance, findings: Finding[]): Promise<string[]> {
  const fixed: string[] = [];
  const bad = (check: string) => findings.find((f) => f.check === check && f.severity !== "ok");
  if (bad("usage.counters")) {
    const n = inst.db
      .prepare("UPDATE users SET used_bytes = COALESCE((SELECT sum(size) FROM documents d WHERE d.owner_id = users.id), 0) WHERE used_bytes != COALESCE((SELECT sum(size) FROM documents d WHERE d.owner_id = users.id), 0)")
      .run().changes;
    fixed.push(`recomputed the storage counter of ${n} user(s)`);
  }
  if (bad("files.mode")) {
    const n = makePrivate(await openModes(inst.paths, true));
    fixed.push(`made ${n} file(s) and folder(s) private to their owner (mode 600/700)`);
  }
  if (bad("vault.untracked")) {
    // A backup reading the vault right now must not lose a file under it; and an upload may have just added one.
    const unpin = pinBlobs();
    try {
      const referenced = new Set([...(referencedHashes(inst.db) as string[]), ...keptBlobs(inst)]);
      const dest = path.join(inst.paths.lostFound, new Date().toISOString().replace(/[:.]/g, "-"));
      let moved = 0;
      for (const rel of await vaultFiles(inst.paths.vault)) {
        const name = rel.split("/")[1];
        if (name && referenced.has(name) && SHA256_RE.test(name)) continue;
        const target = path.join(dest, rel);
        fs.mkdirSync(path.dirname(target), { recursive: true, mode: PRIVATE_DIR_MODE });
        fs.renameSync(path.join(inst.paths.vault, rel), target);
        moved++;
      }
      if (moved) fsyncDir(dest);
      fixed.push(`moved ${moved} untracked file(s) to ${path.relative(inst.paths.root, dest)}`);
    } finally {
      unpin();
    }
  }
  return fixed;
}

/** Quick checks as a report, without recording it: cheap enough for every page view. */
export function quickReport(inst: Instance): DoctorReport {
  return { at: new Date().toISOString(), deep: false, findings: quickChecks(inst), fixed: [] };
}

/**
 * The doctor. Quick checks always; `deep` reads every blob; `fix` repairs
 * only what is safe, under the instance lock (never while a backup or a
 * restore runs). The report is recorded for the Health page.
 */
export async function runDoctor(inst: Instance, opts: { deep?: boolean; fix?: boolean } = {}): Promise<DoctorReport> {
  const check = async () => {
    const deep = opts.deep ? await deepChecks(inst) : [];
    // A deep check that repeats a quick one (file modes, over the whole tree) replaces it.
    return [...quickChecks(inst).filter((q) => !deep.some((d) => d.check === q.check)), ...deep];
  };
  let findings = await check();
  let fixed: string[] = [];
  if (opts.fix && worst(findings) !== "ok") {
    const lock = await acquireLock(inst.paths.root, "doctor --fix");
    try {
      fixed = await fixSafe(inst, findings);
    } finally {
      lock.release();
    }
    if (fixed.length) findings = await check();
  }
  const report: DoctorReport = { at: new Date().toISOString(), deep: !!opts.deep, findings, fixed };
  writeText(inst.db, opts.deep ? "doctor_last_deep" : "doctor_last_quick", JSON.stringify(report));
  return report;
}

/**
 * The doctor on a data directory that may not hold a working instance: no
 * instance, or one that cannot be opened, is itself a finding (the CLI's view).
 */
export async function doctorDataDir(root: string, opts: { deep?: boolean; fix?: boolean } = {}): Promise<DoctorReport> {
  const at = new Date().toISOString();
  const failed = (check: string, message: string): DoctorReport => ({ at, deep: !!opts.deep, fixed: [], findings: [{ check, severity: "fail", count: 1, message, examples: [] }] });
  if (!fs.existsSync(path.join(root, LAYOUT.database))) return failed("instance", `There is no Coffer instance in ${root}.`);
  let inst: Instance;
  try {
    inst = openInstance(root);
  } catch (err) {
    return failed("database.open", (err as Error).message);
  }
  try {
    return await runDoctor(inst, opts);
  } finally {
    closeInstance(inst);
  }
}

export function lastDoctorReport(inst: Instance, deep: boolean): DoctorReport | null {
  const raw = readText(inst.db, deep ? "doctor_last_deep" : "doctor_last_quick");
  return raw ? (JSON.parse(raw) as DoctorReport) : null;
}

export const worst = (findings: Finding[]): Severity =>
  findings.some((f) => f.severity === "fail") ? "fail" : findings.some((f) => f.severity === "warn") ? "warn" : "ok";
