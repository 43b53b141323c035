import fs from "node:fs";
import crypto from "node:crypto";
import { dataPaths, type DataPaths } from "./paths";
import { openDatabase, migrate, type DB } from "./db/connection";
import { readSettingsFile, writeSettingsFile, defaultSettings, SettingsError } from "./settings/store";
import { writeFileAtomic } from "./util/fsatomic";
import { makePrivate, openModesSync, PRIVATE_DIR_MODE } from "./util/modes";
import { readText } from "./db/job-state";

export interface Instance {
  paths: DataPaths;
  db: DB;
  secretKey: Buffer;
  configKey: Buffer;
}

/** A start-up problem a person can fix; printed as one line, no stack trace. */
export class InstanceError extends Error {}

export const KEY_BYTES = 32;

function ensureDir(dir: string, mode = PRIVATE_DIR_MODE): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new InstanceError(`cannot create directory ${dir}: ${e.code === "EACCES" ? "permission denied" : e.message}`);
  }
}

function ensureKey(file: string): Buffer {
  if (fs.existsSync(file)) {
    const key = fs.readFileSync(file);
    if (key.length !== KEY_BYTES) throw new InstanceError(`key file ${file} is ${key.length} bytes, expected ${KEY_BYTES}`);
    return key;
  }
  const key = crypto.randomBytes(KEY_BYTES);
  writeFileAtomic(file, key, 0o600);
  return key;
}

/**
 * Open (creating on first use) the instance in `root`: directories, keys,
 * settings, database migrated forward. Changes nothing else on an existing
 * instance. Throws InstanceError/SettingsError with a sentence for the operator.
 */
export function openInstance(root: string): Instance {
  const paths = dataPaths(root);
  ensureDir(paths.root);
  try {
    fs.accessSync(paths.root, fs.constants.W_OK);
  } catch {
    throw new InstanceError(`data directory ${paths.root} is not writable by this user`);
  }
  ensureDir(paths.keysDir);
  for (const d of [paths.vault, paths.backups, paths.staging, paths.tmp]) ensureDir(d);

  const secretKey = ensureKey(paths.secretKey);
  const configKey = ensureKey(paths.configKey);

  if (!fs.existsSync(paths.settings)) writeSettingsFile(paths.settings, defaultSettings());
  else readSettingsFile(paths.settings); // throws SettingsError naming the file and the field

  let db: DB;
  try {
    // Before SQLite opens it: the WAL and shared-memory files it creates take the database file's mode.
    makePrivate(openModesSync(paths));
    db = openDatabase(paths.db);
    migrate(db);
    makePrivate(openModesSync(paths)); // a database created just now, and its sidecars
  } catch (err) {
    throw new InstanceError(`cannot open database ${paths.db}: ${(err as Error).message}`);
  }
  return { paths, db, secretKey, configKey };
}

/** This installation's id, made on first use. Offsite repositories are marked with it. */
export function instanceId(inst: Instance): string {
  try {
    const id = fs.readFileSync(inst.paths.instanceId, "utf8").trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch {
    /* made below */
  }
  const id = crypto.randomUUID();
  writeFileAtomic(inst.paths.instanceId, id + "\n", 0o600);
  return id;
}

export function closeInstance(inst: Instance): void {
  if (inst.db.open) inst.db.close();
}

export function isSetupComplete(inst: Instance): boolean {
  return readText(inst.db, "setup_completed_at") !== null;
}

export function instanceName(inst: Instance): string {
  return readText(inst.db, "instance_name") ?? "Coffer";
}

/** Remove temp files of jobs that died with the previous process. */
export function sweepTemp(inst: Instance): number {
  let n = 0;
  for (const name of fs.readdirSync(inst.paths.tmp)) {
    fs.rmSync(`${inst.paths.tmp}/${name}`, { recursive: true, force: true });
    n++;
  }
  return n;
}

export { SettingsError };
