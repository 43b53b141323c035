import fs from "node:fs";
import path from "node:path";
import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import type { Instance } from "../instance";
import { AppError } from "../errors";
import { openDatabase, type DB } from "../db/connection";
import { APP_VERSION } from "../version";
import { LAYOUT } from "../layout";
import { blobPath } from "../vault/blobs";
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "../util/modes";
import { FORMAT_VERSION, INSTANCE_MEMBERS, MAGIC, type BackupMeta, type Trigger } from "../backup/format/tables";
import { sha256File } from "../backup/format/db-snapshot";
import { blobPathIn, documentHashes, writeNewFileUnder } from "../backup/restore/payload";
import { stageInto, type RestorePreview } from "../backup/restore/staging";
import type { BackupSource } from "../backup/restore/browse";
import { continuousPlan, litestreamBinary, replicaWindow } from "./litestream";
import { keepingForWindow, markKept, vaultBlobNames } from "./kept";
import { readSettingsVersion, settingsVersionAt } from "./versions";

/** A restore of a week of WAL on a slow disk still finishes; a hung one does not hold the staging slot for ever. */
const RESTORE_TIMEOUT_MS = 30 * 60 * 1000;

export const iso = (d: Date) => d.toISOString().replace(".000Z", "Z");

/** `coffer restore --to-time`'s and the API's time: an ISO 8601 instant with its zone (Z or ±hh:mm), nothing a guess. */
export function parsePointInTime(text: string): Date {
  const at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(at.getTime())) throw new AppError(400, "BAD_TIME", `${JSON.stringify(text.slice(0, 40))} is not a time Coffer can restore to: give an ISO 8601 time with its zone, such as 2026-12-06T10:41:00Z.`);
  return at;
}

/** Run `litestream restore -timestamp` from the file replica into `out` (which must not exist); `timestamp` is `at` to the nanosecond when the caller knows it. */
function litestreamRestore(binary: string, replica: string, at: Date, out: string, signal?: AbortSignal, timestamp = iso(at)): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ["restore", "-o", out, "-timestamp", timestamp, `file://${replica}`], { stdio: ["ignore", "pipe", "pipe"], signal, timeout: RESTORE_TIMEOUT_MS });
    let said = "";
    const keep = (b: Buffer) => (said = (said + b.toString("utf8")).slice(-4000));
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    // A caller that left is not the server's failure.
    const gone = () => new AppError(400, "CLIENT_GONE", "Stopped: nothing was restored.");
    // Litestream's own words name paths on this server: they go to the log, not to whoever asked (a member browsing, too).
    const failed = (why: string, words: string) => {
      console.error(`Coffer: litestream restore at ${iso(at)} failed (${why}): ${words.slice(0, 300)}`);
      return new AppError(500, "CONTINUOUS_RESTORE_FAILED", `Litestream could not rebuild the database at ${iso(at)} (${why}). The server's log has what it said.`);
    };
    child.once("error", (err) => reject(signal?.aborted ? gone() : failed("it could not be started", err.message)));
    child.once("close", (code, sig) => {
      if (code === 0) return resolve();
      if (signal?.aborted) return reject(gone());
      const last = said.trim().split("\n").pop() ?? "";
      reject(failed(sig ?? `exit code ${code}`, last));
    });
  });
}

function tableCounts(db: DB): Record<string, number> {
  const names = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
  return Object.fromEntries(names.map((n) => [n, db.prepare(`SELECT count(*) FROM "${n.replace(/"/g, '""')}"`).pluck().get() as number]));
}

/** A hard link into the payload (same filesystem, no bytes copied; a blob never changes), a copy across filesystems. */
function linkOrCopy(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true, mode: PRIVATE_DIR_MODE });
  try {
    fs.linkSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
  }
}

/** Litestream and a replica whose window holds `at`, or the error that says which is missing. */
function restorableAt(inst: Instance, at: Date): { binary: string; replica: string } {
  const binary = litestreamBinary();
  if (!binary) throw new AppError(503, "CONTINUOUS_UNAVAILABLE", "Restoring to a point in time needs Litestream, which is not installed here (npm install @flydotio/litestream-linux-x64, or set COFFER_LITESTREAM).");
  const plan = continuousPlan(inst);
  const w = replicaWindow(plan.replica);
  if (!w.first || !w.last) throw new AppError(404, "CONTINUOUS_EMPTY", `There is no continuous replica in ${plan.replica} to restore from${plan.enabled ? " yet" : " (continuous protection is off)"}.`);
  if (at < w.first || at > w.last) {
    throw new AppError(422, "OUTSIDE_WINDOW", `${iso(at)} is outside the window continuous protection covers: from ${iso(w.first)} to ${iso(w.last)} (UTC). Choose a time in it.`);
  }
  return { binary, replica: plan.replica };
}

/** Rebuild the database as it was at `at` into `dbFile` (a new file), one self-contained file as in every archive; what it holds. */
export interface Rebuilt {
  hashes: string[];
  tables: Record<string, number>;
  schemaVersion: number;
}

export async function rebuildDatabase(binary: string, replica: string, at: Date, dbFile: string, signal?: AbortSignal, timestamp?: string): Promise<Rebuilt> {
  await litestreamRestore(binary, replica, at, dbFile, signal, timestamp);
  fs.chmodSync(dbFile, PRIVATE_FILE_MODE);
  const db = openDatabase(dbFile);
  try {
    // The restored copy is in WAL mode like its source.
    db.pragma("journal_mode = DELETE");
    return { hashes: documentHashes(db), tables: tableCounts(db), schemaVersion: db.pragma("user_version", { simple: true }) as number };
  } finally {
    db.close();
  }
}

/** The meta a point in time gets, as if it were an archive of that second. */
export function pointInTimeMeta(at: Date, db: Rebuilt, members: BackupMeta["members"], vaultBytes: number, trigger: Trigger = "manual"): BackupMeta {
  return {
    magic: MAGIC,
    format_version: FORMAT_VERSION,
    app_version: APP_VERSION,
    schema_version: db.schemaVersion,
    created_at: at.toISOString(),
    scope: "full",
    trigger,
    members,
    vault: { objects: db.hashes.length, bytes: vaultBytes },
    tables: db.tables,
  };
}

/**
 * Stage the instance as it was at `at` from the local continuous replica
 * (docs/architecture.md#continuous-protection), for the same validate, preview and apply as every
 * restore: the database rebuilt by `litestream restore -timestamp` into the
 * staging payload, the settings and keys in effect then (the newest version
 * kept beside the replica at or before `at`, ./versions.ts; the current ones,
 * said in a warning, when none is that old), and the vault files that
 * database names, linked from the live vault. A time outside the replica's
 * window is refused with the window; so is a database whose files the vault
 * no longer has, and a settings version that is damaged.
 */
export async function stagePointInTime(
  inst: Instance,
  at: Date,
  opts: { owner?: string; trigger?: Trigger; signal?: AbortSignal; /** Stage into another instance (a drill's scratch) instead of this one. */ into?: Instance } = {},
): Promise<RestorePreview> {
  const target = opts.into ?? inst;
  const { binary, replica } = restorableAt(inst, at);
  // Read and checked before anything is staged: a damaged version refuses the restore, it is never restored.
  const version = settingsVersionAt(replica, at);
  const kept = version ? readSettingsVersion(version) : null;
  return stageInto(target, opts.owner ?? "local", () => {}, async ({ payload }) => {
    const { hashes, tables, schemaVersion } = await rebuildDatabase(binary, replica, at, path.join(payload, LAYOUT.database), opts.signal);
    fs.mkdirSync(path.join(payload, LAYOUT.keysDir), { recursive: true, mode: PRIVATE_DIR_MODE });
    if (kept) {
      const files: [string, Buffer][] = [[LAYOUT.settings, Buffer.from(kept.settings, "utf8")], [LAYOUT.secretKey, kept.secretKey], [LAYOUT.configKey, kept.configKey]];
      for (const [m, bytes] of files) await writeNewFileUnder(payload, m, Readable.from([bytes]));
    } else {
      for (const m of [LAYOUT.settings, LAYOUT.secretKey, LAYOUT.configKey]) {
        fs.copyFileSync(path.join(inst.paths.root, m), path.join(payload, m), fs.constants.COPYFILE_EXCL);
        fs.chmodSync(path.join(payload, m), PRIVATE_FILE_MODE);
      }
    }
    const vault = path.join(payload, LAYOUT.vault);
    fs.mkdirSync(vault, { recursive: true, mode: PRIVATE_DIR_MODE });
    let bytes = 0;
    const gone: string[] = [];
    for (const sha of hashes) {
      const live = blobPath(inst.paths, sha);
      const st = fs.statSync(live, { throwIfNoEntry: false });
      if (!st?.isFile()) {
        gone.push(sha);
        continue;
      }
      linkOrCopy(live, blobPathIn(vault, sha));
      bytes += st.size;
    }
    if (gone.length) {
      throw new AppError(422, "CONTINUOUS_FILES_GONE", `At ${iso(at)} the database names ${gone.length} document file(s) that are no longer in the vault, so this point in time cannot be restored whole. Restore from a backup archive of that time instead.`);
    }
    // The other files in the vault now (documents uploaded after the time, or erased before it) are
    // another point of the window: they stay, kept for the window, so a second restore can still reach it.
    const warnings = [
      version
        ? `This is the instance as it was at ${iso(at)}, from the continuous replica: its database, and the settings and keys in effect then (kept since ${iso(version.at)}).`
        : `This is the database as it was at ${iso(at)}, from the continuous replica; settings and keys are the current ones (none were kept from that time).`,
    ];
    // A drill's scratch restore changes nothing here, so it keeps nothing for the window either.
    if (target === inst && keepingForWindow(inst)) {
      const named = new Set(hashes);
      const others = vaultBlobNames(inst.paths.vault).filter((sha) => !named.has(sha));
      for (const sha of others) linkOrCopy(blobPath(inst.paths, sha), blobPathIn(vault, sha));
      markKept(inst, others);
      if (others.length) warnings.push(`${others.length} document file(s) that the database of that time does not name stay in the vault for the continuous window.`);
    }
    const members: BackupMeta["members"] = {};
    for (const m of INSTANCE_MEMBERS) members[m] = await sha256File(path.join(payload, m));
    const meta = pointInTimeMeta(at, { hashes, tables, schemaVersion }, members, bytes, opts.trigger);
    return { meta, warnings, encrypted: false };
  });
}

/**
 * A second of the continuous window as a source of single documents: its
 * database rebuilt by Litestream into the browse cache; the files it names
 * are the vault's (an erased document's file stays for the window), so
 * there is nothing to fetch, and a file already gone is said as such.
 */
export function pointInTimeSource(inst: Instance, asked: Date): BackupSource {
  // Whole seconds, as the window is counted: .001 and .002 are not two more rebuilds of the same second.
  const at = new Date(Math.floor(asked.getTime() / 1000) * 1000);
  const { binary, replica } = restorableAt(inst, at);
  const name = iso(at);
  return {
    name,
    kind: "point_in_time",
    // A past second of the replica does not change.
    version: async () => "",
    async unpackDatabase(payload, { admit, signal }) {
      fs.mkdirSync(payload, { recursive: true, mode: PRIVATE_DIR_MODE });
      const dbFile = path.join(payload, LAYOUT.database);
      const rebuilt = await rebuildDatabase(binary, replica, at, dbFile, signal);
      const size = fs.statSync(dbFile).size;
      // Litestream does not say the size first: counted once it is there (the cap still refuses it).
      admit(size);
      const meta = pointInTimeMeta(at, rebuilt, { [LAYOUT.database]: await sha256File(dbFile) }, 0);
      return { meta, encrypted: false, has_vault: true };
    },
    async fetchFiles(_payload, need) {
      if (need.size) {
        throw new AppError(422, "CONTINUOUS_FILES_GONE", `The files of ${need.size} chosen document(s) are no longer in the vault (erased before continuous protection kept such files, or by hand). Restore them from a backup archive of that time instead. Nothing was restored.`);
      }
      return new Set();
    },
  };
}
