import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../instance";
import type { Env } from "../paths";
import { currentSettings } from "../settings/store";
import { currentBackupDir } from "../backup/local/directory";
import { writeFileAtomic } from "../util/fsatomic";
import { PRIVATE_DIR_MODE } from "../util/modes";

/**
 * Litestream 0.3.13 (docs/architecture.md#continuous-protection) as Coffer drives it: where the
 * binary is, the config it runs with, and what its file replica on disk
 * says. The replica is read from its directory layout (Litestream's
 * file/replica_client.go: generations/<id>/snapshots/<index>.snapshot.lz4
 * and generations/<id>/wal/<index>_<offset>.wal.lz4, each file's mtime
 * being the time Litestream's own restore -timestamp compares against),
 * not by running `litestream snapshots`: health is polled and must not
 * spawn a 30 MB binary per request, and it must answer with the binary missing.
 */

export const LITESTREAM_PACKAGE = "@flydotio/litestream-linux-x64";

/** Where a restore to a point in time reads and Litestream writes: `<backup dir>/continuous/`. */
export const REPLICA_DIR = "continuous";

/** Litestream's own state (shadow WAL, generation name) and the supervisor's pid file, under the data dir. */
export const CONTINUOUS_STATE_DIR = ".continuous";

/** A full snapshot this often, so a restore replays at most an hour of WAL (litestream#266). */
export const SNAPSHOT_INTERVAL_H = 1;

/** The app's root (bin/coffer.cjs sets COFFER_APP_ROOT for the CLI; the server runs from it). */
function appRoot(env: Env): string {
  return path.resolve(/*turbopackIgnore: true*/ env.COFFER_APP_ROOT ?? process.cwd());
}

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The Litestream binary: COFFER_LITESTREAM (a system binary, for other platforms), else the npm package's, else null. */
export function litestreamBinary(env: Env = process.env): string | null {
  if (env.COFFER_LITESTREAM) return executable(env.COFFER_LITESTREAM) ? path.resolve(/*turbopackIgnore: true*/ env.COFFER_LITESTREAM) : null;
  const bundled = path.join(appRoot(env), "node_modules", ...LITESTREAM_PACKAGE.split("/"), "litestream");
  return executable(bundled) ? bundled : null;
}

export interface ContinuousPlan {
  enabled: boolean;
  windowDays: number;
  /** The file replica's directory. */
  replica: string;
  /** Litestream's meta-path (shadow WAL), inside the data dir. */
  meta: string;
}

export function continuousPlan(inst: Instance): ContinuousPlan {
  const c = currentSettings(inst.paths.settings).backup.continuous;
  return {
    enabled: c.enabled,
    windowDays: c.window_days,
    replica: path.join(currentBackupDir(inst), REPLICA_DIR),
    meta: path.join(inst.paths.root, CONTINUOUS_STATE_DIR, "meta"),
  };
}

const yamlString = (s: string) => JSON.stringify(s); // JSON strings are YAML flow scalars

/**
 * Litestream's config. Retention keeps a day more than the window: 0.3.13
 * deletes everything before the oldest snapshot younger than `retention`
 * (replica.go EnforceRetention), so the first second of the window needs
 * a snapshot taken before it. No secrets: a file replica has none.
 */
export function litestreamConfig(inst: Instance, plan: ContinuousPlan): string {
  const retentionH = plan.windowDays * 24 + 24;
  return [
    "# Written by Coffer at each start of Litestream; edits are overwritten (settings.yaml: backup.continuous).",
    "dbs:",
    `  - path: ${yamlString(inst.paths.db)}`,
    `    meta-path: ${yamlString(plan.meta)}`,
    "    replicas:",
    "      - type: file",
    `        path: ${yamlString(plan.replica)}`,
    `        retention: ${retentionH}h`,
    "        retention-check-interval: 1h",
    `        snapshot-interval: ${SNAPSHOT_INTERVAL_H}h`,
    "        sync-interval: 1s",
    "",
  ].join("\n");
}

/**
 * Where the config lives: beside Litestream's own state, not in .tmp, which
 * start-up empties and which must be empty after any crash.
 */
export const litestreamConfigPath = (inst: Instance) => path.join(inst.paths.root, CONTINUOUS_STATE_DIR, "litestream.yml");

/** Write the config 0600; returns its path. */
export function writeLitestreamConfig(inst: Instance, plan: ContinuousPlan): string {
  const file = litestreamConfigPath(inst);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
  fs.mkdirSync(plan.meta, { recursive: true, mode: PRIVATE_DIR_MODE });
  fs.mkdirSync(plan.replica, { recursive: true, mode: PRIVATE_DIR_MODE });
  writeFileAtomic(file, litestreamConfig(inst, plan), 0o600);
  return file;
}

export const GENERATION_RE = /^[0-9a-f]{16}$/;
export const SNAPSHOT_RE = /^[0-9a-f]{8}\.snapshot\.lz4$/;
export const WAL_RE = /^[0-9a-f]{8}_[0-9a-f]{8}\.wal\.lz4$/;

export interface ReplicaWindow {
  generations: number;
  /** The earliest second a restore can reach (the oldest snapshot), or null when there is none. */
  first: Date | null;
  /** The newest second the replica holds (its newest snapshot or WAL segment). */
  last: Date | null;
  /** Its newest file's mtime to the millisecond (what the bucket's copy is compared with), or null. */
  lastMs: number | null;
}

function mtimes(dir: string, re: RegExp): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const n of names) {
    if (!re.test(n)) continue;
    const st = fs.lstatSync(path.join(dir, n), { throwIfNoEntry: false });
    if (st?.isFile()) out.push(st.mtimeMs);
  }
  return out;
}

/** What a file replica covers, as Litestream's restore computes it (replica.go GenerationTimeBounds, whole seconds). */
export function replicaWindow(replica: string): ReplicaWindow {
  const gens = path.join(replica, "generations");
  let names: string[] = [];
  try {
    names = fs.readdirSync(gens).filter((n) => GENERATION_RE.test(n));
  } catch {
    /* no replica yet */
  }
  let first = Infinity;
  let last = -Infinity;
  let generations = 0;
  for (const g of names) {
    const snaps = mtimes(path.join(gens, g, "snapshots"), SNAPSHOT_RE);
    if (!snaps.length) continue; // a generation without a snapshot restores nothing
    generations++;
    const wals = mtimes(path.join(gens, g, "wal"), WAL_RE);
    first = Math.min(first, ...snaps);
    last = Math.max(last, ...snaps, ...wals);
  }
  // Whole seconds inside the window: restore -timestamp needs a snapshot at or before the second asked for.
  return {
    generations,
    first: generations ? new Date(Math.ceil(first / 1000) * 1000) : null,
    last: generations ? new Date(Math.floor(last / 1000) * 1000) : null,
    lastMs: generations ? Math.floor(last) : null,
  };
}
