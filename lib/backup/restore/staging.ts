import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import type { Readable } from "node:stream";
import { isSetupComplete, type Instance } from "../../instance";
import { COFFER_APPLICATION_ID, openDatabase, type DB } from "../../db/connection";
import { SCHEMA_VERSION } from "../../db/migrations";
import { APP_VERSION } from "../../version";
import { parseSettings } from "../../settings/store";
import { writeFileAtomic } from "../../util/fsatomic";
import { AppError, isDiskFull } from "../../errors";
import type { Env } from "../../paths";
import { KEY_BYTES } from "../../instance";
import { formatBytes } from "../../format";
import { readArchive, ArchiveError } from "../format/reader";
import { blobPathIn, documentHashes, writeNewFileUnder } from "./payload";
import { compareWithNow, type RestoreChanges } from "./changes";
import type { AgeKeys } from "../../crypto/age";
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "../../util/modes";
import { processWide } from "../../util/process-wide";
import { LAYOUT } from "../../layout";
import { metaUnpackedBytes, scopeHasInstance, scopeHasVault, type BackupMeta } from "../format/tables";

export const STAGE_TTL_MS = 60 * 60 * 1000;
/** Staged restores kept at once (finished or in flight): each is a full copy of a backup on disk. */
export const MAX_STAGED = 3;
const DISK_MARGIN = 512 * 1024 * 1024;
export const ID_RE = /^[0-9a-f]{32}$/;

export interface RestorePreview {
  id: string;
  created_at: string;
  app_version: string;
  format_version: number;
  schema_version: number;
  scope: string;
  trigger: string;
  tables: Record<string, number>;
  vault: { objects: number; bytes: number };
  warnings: string[];
  /** The backup was an age file, decrypted with the key given for this one request. */
  encrypted: boolean;
  /** Said when the backup comes from an older schema that the restore will migrate; null otherwise. */
  upgrade: string | null;
  /**
   * What the restore would change against this instance as it was when staged (documents that
   * would disappear or come back, accounts, settings); null when there is nothing to compare
   * (a fresh server in the setup wizard, a backup without the instance part). Absent in a
   * preview staged by an older Coffer.
   */
  changes: RestoreChanges | null;
  staged_at: string;
  expires_at: string;
}

interface StagedRecord {
  preview: RestorePreview;
  meta: BackupMeta;
}

function stagingDir(inst: Instance, id: string): string {
  if (!ID_RE.test(id)) throw new AppError(404, "NOT_FOUND", "That staged restore was not found. It may have expired; upload the backup again.");
  return path.join(inst.paths.staging, id);
}

function freeBytes(dir: string): number {
  const st = fs.statfsSync(dir);
  return st.bavail * st.bsize;
}

/**
 * Disk promised to stagings in flight in this process (their archive's
 * unpacked size, once its meta is read): a second upload must not be given
 * the free space the first one is about to fill.
 */
function reservations(): Map<string, number> {
  return processWide("stagingReserved", () => new Map<string, number>());
}

/** Reserve `bytes` of disk for staging `id` (0 to keep the slot, delete to release): what restoreCapBytes leaves to others. */
/** Browse caches in use in this process (being unpacked, or held by a restore): never made way for. */
export const busyStaging = () => processWide("busyStaging", () => new Set<string>());

export function reserveStaging(id: string, bytes: number | null): void {
  if (bytes === null) reservations().delete(id);
  else reservations().set(id, bytes);
}

function reservedByOthers(id: string): number {
  let sum = 0;
  for (const [other, bytes] of reservations()) if (other !== id) sum += bytes;
  return sum;
}

/** Cap on unpacked size: COFFER_RESTORE_MAX_BYTES, else free disk minus a margin and what stagings in flight will still need. */
export function restoreCapBytes(inst: Instance, env: Env = process.env, forId = ""): number {
  const set = Number(env.COFFER_RESTORE_MAX_BYTES);
  if (Number.isFinite(set) && set > 0) return set;
  return Math.max(0, freeBytes(inst.paths.staging) - DISK_MARGIN - reservedByOthers(forId));
}


function insufficientStorage(need: number | null, have: number): AppError {
  const needs = need === null ? "" : `need about ${formatBytes(need)}, `;
  return new AppError(507, "INSUFFICIENT_STORAGE", `There is not enough free disk to stage this backup: ${needs}have ${formatBytes(have)}. Free some space (or restore from a disk with more room) and try again.`);
}

interface StagingClaim {
  owner: string;
  at: string;
}

/** Remove staged restores older than the TTL (and any leftover without a record). */
export function sweepStaging(inst: Instance, now = Date.now()): void {
  for (const name of fs.readdirSync(inst.paths.staging)) {
    const dir = path.join(inst.paths.staging, name);
    if (!fs.existsSync(path.join(dir, "staged.json")) && reservations().has(name)) continue; // in flight here
    if (stagingExpiry(dir) <= now) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The record of a browsed backup's cached database (lib/backup/restore/browse.ts): no staged.json, so it can never be applied. */
export const BROWSE_RECORD = "browse.json";

/** When a staging directory expires: its record's expiry (a staged restore's or a browse cache's), else an hour after it was claimed (or last touched). */
function stagingExpiry(dir: string): number {
  try {
    return Date.parse((JSON.parse(fs.readFileSync(path.join(dir, BROWSE_RECORD), "utf8")) as { expires_at: string }).expires_at);
  } catch {
    // not a browse cache
  }
  try {
    return Date.parse((JSON.parse(fs.readFileSync(path.join(dir, "staged.json"), "utf8")) as StagedRecord).preview.expires_at);
  } catch {
    try {
      return Date.parse((JSON.parse(fs.readFileSync(path.join(dir, "claim.json"), "utf8")) as StagingClaim).at) + STAGE_TTL_MS;
    } catch {
      const st = fs.statSync(dir, { throwIfNoEntry: false });
      return st ? st.mtimeMs + STAGE_TTL_MS : 0;
    }
  }
}

function stagingOwner(dir: string): string | null {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, "claim.json"), "utf8")) as StagingClaim).owner;
  } catch {
    return null;
  }
}

/**
 * A new staging directory, if there is room for one more staged restore.
 * At the limit, the caller's own oldest finished staging makes way (someone
 * who uploads again has given up on the earlier one); anyone else waits for
 * the oldest to expire. Synchronous from count to mkdir, so two uploads in
 * this process cannot both take the last slot.
 */
export function claimStagingDir(inst: Instance, owner: string, now = Date.now()): { id: string; dir: string } {
  sweepStaging(inst, now);
  const dirs = fs
    .readdirSync(inst.paths.staging)
    .filter((n) => ID_RE.test(n))
    .map((n) => ({ id: n, dir: path.join(inst.paths.staging, n) }))
    .map((d) => ({ ...d, expires: stagingExpiry(d.dir), finished: fs.existsSync(path.join(d.dir, "staged.json")), browse: fs.existsSync(path.join(d.dir, BROWSE_RECORD)), owner: stagingOwner(d.dir) }))
    .sort((a, b) => a.expires - b.expires);
  if (dirs.length >= MAX_STAGED) {
    // A browse cache is only a cache: it makes way for anyone before a staged restore does.
    // Not one a restore is reading or a browse is still unpacking (busyStaging): that would pull it from under them.
    const mine = dirs.find((d) => d.browse && !busyStaging().has(d.id)) ?? dirs.find((d) => d.finished && d.owner === owner);
    if (!mine) {
      const oldest = dirs[0];
      const minutes = Math.max(1, Math.ceil((oldest.expires - now) / 60_000));
      throw new AppError(
        429,
        "TOO_MANY_STAGED",
        `${MAX_STAGED} restores are already staged or uploading. The oldest expires at ${new Date(oldest.expires).toISOString().slice(11, 16)} UTC (in ${minutes} minute${minutes === 1 ? "" : "s"}); apply or discard one, or try again then.`,
      );
    }
    fs.rmSync(mine.dir, { recursive: true, force: true });
  }
  const id = crypto.randomBytes(16).toString("hex");
  const dir = path.join(inst.paths.staging, id);
  fs.mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
  reservations().set(id, 0);
  fs.writeFileSync(path.join(dir, "claim.json"), JSON.stringify({ owner, at: new Date(now).toISOString() } satisfies StagingClaim), { mode: PRIVATE_FILE_MODE });
  return { id, dir };
}

/**
 * A backup's database file, checked as untrusted input: SQLite, Coffer's
 * application id, integrity, a schema this build reads, a documents table,
 * and every document hash 64 hex digits. Returns the warnings and the hashes.
 */
export function checkBackupDatabase(file: string, meta: BackupMeta): { warnings: string[]; hashes: string[] } {
  const warnings: string[] = [];
  const head = Buffer.alloc(16);
  const fd = fs.openSync(file, "r");
  try {
    fs.readSync(fd, head, 0, 16, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.toString("latin1") !== "SQLite format 3\0") throw new ArchiveError("DB_NOT_SQLITE", "The database in this backup is not an SQLite database.");
  let db: DB | undefined;
  try {
    db = openDatabase(file, { readonly: true });
    const appId = db.pragma("application_id", { simple: true }) as number;
    if (appId !== COFFER_APPLICATION_ID) throw new ArchiveError("DB_FOREIGN", "The database in this backup belongs to another application, not Coffer.");
    const check = db.pragma("integrity_check", { simple: true });
    if (check !== "ok") throw new ArchiveError("DB_CORRUPT", "The database in this backup is damaged (it fails SQLite's integrity check).");
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version !== meta.schema_version) warnings.push(`The database says schema version ${version}, the backup's meta says ${meta.schema_version}.`);
    if (version > SCHEMA_VERSION) throw new ArchiveError("FORMAT_TOO_NEW", `The database in this backup has schema ${version}; this is Coffer ${APP_VERSION} (schema ${SCHEMA_VERSION}). Upgrade Coffer first, then restore.`);
    const hasDocs = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'documents'").get();
    if (!hasDocs) throw new ArchiveError("DB_CORRUPT", "The database in this backup has no documents table.");
    // Coffer's schema has no views or triggers: one in a backup would run Coffer's own queries through
    // code the backup chose (a recursive view that never ends, a trigger that lives on after a restore).
    const foreign = db.prepare("SELECT type, name FROM sqlite_schema WHERE type IN ('view', 'trigger') LIMIT 1").get() as { type: string; name: string } | undefined;
    if (foreign) throw new ArchiveError("DB_FOREIGN", `The database in this backup has a ${foreign.type} (${foreign.name.slice(0, 60)}) that Coffer never creates; it was not made by Coffer, or was changed since.`);
    const hasUsers = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'users'").get();
    if (!hasUsers) throw new ArchiveError("DB_CORRUPT", "The database in this backup has no users table.");
    return { warnings, hashes: documentHashes(db) };
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new ArchiveError("DB_CORRUPT", `The database in this backup cannot be opened: ${(err as Error).message}.`, 422, { cause: err });
  } finally {
    db?.close();
  }
}

function checkStagedDatabase(file: string, meta: BackupMeta, stagedVault: string | null, liveVault: string): string[] {
  const { warnings, hashes: referenced } = checkBackupDatabase(file, meta);
  const missing = referenced.filter((sha) => !fs.existsSync(blobPathIn(stagedVault ?? liveVault, sha)));
  if (missing.length && stagedVault) {
    throw new ArchiveError("VAULT_INCOMPLETE", `The database in this backup names ${missing.length} document file(s) the archive does not contain.`);
  }
  if (missing.length) warnings.push(`${missing.length} document(s) in this database-only backup have no content in this instance's vault; they will show as missing.`);
  return warnings;
}

/**
 * Stage: stream an archive through the one validator into a fresh directory
 * under data/.staging, check what the stream alone cannot (the database, the
 * settings, the keys), and return what a restore would bring back. Nothing
 * outside the staging directory is touched; a rejected archive leaves nothing.
 */
export async function stageArchive(
  inst: Instance,
  source: Readable,
  opts: { maxBytes?: number; maxEntries?: number; keys?: AgeKeys; owner?: string } = {},
): Promise<RestorePreview> {
  return stageInto(inst, opts.owner ?? "local", () => source.destroy(), async ({ payload, id, admit }) => {
    const summary = await readArchive(source, {
      maxBytes: opts.maxBytes ?? restoreCapBytes(inst, process.env, id),
      maxEntries: opts.maxEntries,
      keys: opts.keys,
      onMeta: (meta) => admit(meta), // the reader holds the stream to maxBytes
      onMember: (name, content) => writeStagedMember(payload, name, content),
    });
    return { meta: summary.meta, warnings: summary.warnings, encrypted: summary.encryption !== null };
  });
}

/** Write one validated member into a staging payload (readArchive has checked the name; the trust boundary's writer is a second lock on the door). */
export const writeStagedMember = (payload: string, name: string, content: Readable) => writeNewFileUnder(payload, name, content);

export interface StagingFill {
  /** Where the instance's files go, laid out as in the data directory. */
  payload: string;
  id: string;
  /**
   * Call with the backup's meta before writing its content: refuses what
   * cannot fit (and, given a cap, what is larger), and reserves the space.
   */
  admit: (meta: BackupMeta, cap?: number) => void;
}

/**
 * The staging pipeline every restore source goes through: claim a staging
 * directory, let `fill` put the backup's files into its payload (an archive
 * stream, or an offsite repository's objects), then check what a stream
 * alone cannot (the database, the settings, the keys) and record the preview.
 * Nothing outside the staging directory is touched; a failure leaves nothing.
 */
export async function stageInto(
  inst: Instance,
  owner: string,
  refused: () => void,
  fill: (f: StagingFill) => Promise<{ meta: BackupMeta; warnings: string[]; encrypted: boolean }>,
): Promise<RestorePreview> {
  let claimed;
  try {
    claimed = claimStagingDir(inst, owner);
  } catch (err) {
    refused();
    throw err;
  }
  const { id, dir } = claimed;
  const payload = path.join(dir, "payload");
  let need: number | null = null;
  const admit = (meta: BackupMeta, cap?: number) => {
    // Known before the first byte is written: a backup that cannot fit is refused now, not half-way.
    need = metaUnpackedBytes(meta);
    const have = Math.max(0, freeBytes(inst.paths.staging) - reservedByOthers(id));
    if (need > have) throw insufficientStorage(need, have);
    if (cap !== undefined && need > cap) throw new ArchiveError("TOO_LARGE", `This backup unpacks to ${formatBytes(need)}, more than this server takes (${formatBytes(cap)}; COFFER_RESTORE_MAX_BYTES or free disk).`, 413);
    reservations().set(id, need);
  };
  try {
    fs.mkdirSync(payload, { recursive: true, mode: PRIVATE_DIR_MODE });
    const filled = await fill({ payload, id, admit });
    const meta = filled.meta;
    const warnings = [...filled.warnings];
    if (scopeHasInstance(meta.scope)) {
      const stagedVault = scopeHasVault(meta.scope) ? path.join(payload, LAYOUT.vault) : null;
      if (stagedVault) fs.mkdirSync(stagedVault, { recursive: true, mode: PRIVATE_DIR_MODE });
      warnings.push(...checkStagedDatabase(path.join(payload, LAYOUT.database), meta, stagedVault, inst.paths.vault));
      try {
        parseSettings(LAYOUT.settings, fs.readFileSync(path.join(payload, LAYOUT.settings), "utf8"));
      } catch (err) {
        throw new ArchiveError("SETTINGS_INVALID", `The settings in this backup are not valid: ${(err as Error).message.replace(/\.?$/, ".")}`);
      }
      for (const k of [LAYOUT.secretKey, LAYOUT.configKey]) {
        if (fs.statSync(path.join(payload, k)).size !== KEY_BYTES) throw new ArchiveError("KEYS_INVALID", `The backup's ${k} is not a ${KEY_BYTES}-byte key.`);
      }
    }
    const now = new Date();
    let changes: RestoreChanges | null = null;
    if (scopeHasInstance(meta.scope) && isSetupComplete(inst)) {
      try {
        changes = compareWithNow(inst, payload, now);
      } catch (err) {
        // Only the comparison failed (the backup passed every check): say so and let the person decide.
        warnings.push(`Coffer could not compare this backup with the instance now (${(err as Error).message}); the preview shows only what the backup holds.`);
      }
    }
    const preview: RestorePreview = {
      id,
      created_at: meta.created_at,
      app_version: meta.app_version,
      format_version: meta.format_version,
      schema_version: meta.schema_version,
      scope: meta.scope,
      trigger: meta.trigger,
      tables: meta.tables,
      vault: meta.vault,
      warnings,
      encrypted: filled.encrypted,
      upgrade:
        scopeHasInstance(meta.scope) && meta.schema_version < SCHEMA_VERSION
          ? `Made by Coffer ${meta.app_version} (database schema ${meta.schema_version}): its database will be upgraded to schema ${SCHEMA_VERSION} when it is restored.`
          : null,
      changes,
      staged_at: now.toISOString(),
      expires_at: new Date(now.getTime() + STAGE_TTL_MS).toISOString(),
    };
    writeFileAtomic(path.join(dir, "staged.json"), JSON.stringify({ preview, meta } satisfies StagedRecord, null, 2), 0o600);
    return preview;
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    if (isDiskFull(err)) throw insufficientStorage(need, freeBytes(inst.paths.staging));
    throw err;
  } finally {
    reservations().delete(id);
  }
}

export function readStaged(inst: Instance, id: string): StagedRecord {
  const dir = stagingDir(inst, id);
  let rec: StagedRecord;
  try {
    rec = JSON.parse(fs.readFileSync(path.join(dir, "staged.json"), "utf8")) as StagedRecord;
  } catch {
    throw new AppError(404, "NOT_FOUND", "That staged restore was not found. It may have expired; upload the backup again.");
  }
  if (Date.parse(rec.preview.expires_at) <= Date.now()) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new AppError(404, "EXPIRED", "That staged restore has expired (they last an hour). Upload the backup again.");
  }
  return rec;
}

export function discardStaged(inst: Instance, id: string): void {
  readStaged(inst, id);
  fs.rmSync(stagingDir(inst, id), { recursive: true, force: true });
}
