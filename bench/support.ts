import fs from "node:fs";
import path from "node:path";
import { spawn, execSync } from "node:child_process";
import Database from "better-sqlite3";
import { rssSampler } from "../e2e/support/rss";
import { currentSettings, saveSettings } from "../lib/settings/store";
import { encryptSecret } from "../lib/settings/secrets";
import { setMeta } from "../lib/db/connection";
import { benchContext, printedTables } from "./targets";

export { rssSampler };

/** A server's resident memory at rest: sampled for half a second. */
export async function idleRss(pid: number): Promise<number> {
  const sampler = rssSampler(pid);
  await new Promise((r) => setTimeout(r, 500));
  return sampler.stop();
}

/** Run a shell command, timing it and sampling its process tree's peak RSS. */
export async function measureShell(cmd: string): Promise<{ seconds: number; peakRss: number }> {
  const t0 = performance.now();
  const child = spawn("bash", ["-c", cmd], { stdio: ["ignore", "inherit", "inherit"] });
  const sampler = rssSampler(child.pid!);
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  const peakRss = sampler.stop();
  if (code !== 0) throw new Error(`${cmd} failed (${code})`);
  return { seconds: (performance.now() - t0) / 1000, peakRss };
}

/** The peer tools are Debian's; install what is missing, or say plainly what is. */
export function ensureTools(tools: Record<string, string>): void {
  const missing = Object.entries(tools).filter(([bin]) => !fs.existsSync(`/usr/bin/${bin}`));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))].join(" ");
  try {
    execSync(`apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs}`, { stdio: "inherit" });
  } catch {
    throw new Error(`The benchmark needs ${missing.map(([b]) => b).join(", ")} (Debian: ${pkgs}) and could not install them.`);
  }
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const fmtMiB = (b: number) => `${(b / MiB).toFixed(0)} MiB`;

export function table(rows: Record<string, string | number>[]): void {
  if (printedTables.length === 0) {
    const c = benchContext();
    console.log(`Measured at commit ${c.commit}, Node ${c.node}, ${c.cores} cores (${c.cpu})\n`);
  }
  printedTables.push(rows);
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i])).join("  ");
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c]))));
}

/**
 * A document vault as users have one: backup.bench.ts's 1 GiB of documents
 * (hard links: blobs are immutable) with the instance's own small database,
 * without the 1 GiB of filler rows that bench adds to stress the database path.
 */
export function vaultInstance(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  fs.mkdirSync(to, { mode: 0o700 });
  execSync(`cp -al ${from}/vault ${to}/vault && cp -a ${from}/keys ${from}/settings.yaml ${to}/`);
  execSync(`sqlite3 ${from}/coffer.db ".backup ${to}/coffer.db"`);
  const db = new Database(path.join(to, "coffer.db"));
  db.exec("DROP TABLE IF EXISTS bench_rows; VACUUM;");
  db.close();
}

/**
 * The proof job runs when a server starts: a verification slice when an hour
 * has passed since the last, and a restore drill when one is due (the bench
 * datasets have backups, so one always is). Either would run beside what a
 * bench measures, in its idle baseline too; proof.bench.ts measures them.
 * So: drills off, and the last slice recorded as just now.
 */
export function quietProofJob(dataDir: string): void {
  if (!fs.existsSync(path.join(dataDir, "coffer.db"))) return; // a fresh server: nothing stored to prove yet
  const settingsFile = path.join(dataDir, "settings.yaml");
  const s = currentSettings(settingsFile);
  saveSettings(settingsFile, { ...s, backup: { ...s.backup, proof: { ...s.backup.proof, drill_every_days: 0 } } });
  const db = new Database(path.join(dataDir, "coffer.db"));
  try {
    setMeta(db, "verify_last_slice_at", new Date().toISOString());
  } finally {
    db.close();
  }
}

/**
 * A bench data dir's settings: no schedule and no encryption, the bucket on
 * the bench's s3rver (sending to it on or off), and continuous protection on
 * or off. Datasets come from New setup, which turns continuous protection
 * on; it also follows the bucket, so a bench that measures one path sets it.
 */
export function benchSettings(dataDir: string, s3: { endpoint: string; bucket: string }, opts: { offsite: boolean; continuous: boolean }): void {
  const file = path.join(dataDir, "settings.yaml");
  const configKey = fs.readFileSync(path.join(dataDir, "keys", "config.key"));
  const s = currentSettings(file);
  saveSettings(file, {
    ...s,
    backup: {
      ...s.backup,
      enabled: false,
      encryption: { mode: "off", recipients: [], passphrase: null },
      offsite: { enabled: opts.offsite, endpoint: s3.endpoint, region: "us-east-1", bucket: s3.bucket, prefix: "coffer", path_style: true, access_key_id: "S3RVER", secret_access_key: encryptSecret(configKey, "S3RVER"), checksum_compat: true },
      continuous: { ...s.backup.continuous, enabled: opts.continuous, offsite: true },
    },
  });
}
