import zlib from "node:zlib";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import type { Instance } from "../../instance";
import type { InstanceLock } from "../../lock";
import { notFound } from "../../errors";
import { systemActor, audit, type Actor } from "../../audit/log";
import { fileEncryption, verifiedFiles } from "../runs";
import { currentBackupDir } from "./directory";
import { LocalDirTarget, type BackupTarget } from "./target";
import { planRetention, type RetentionPolicy } from "../retention";
import { META_NAME, archiveBaseName, archiveNameDate, archiveNameScope, compareArchiveNamesNewestFirst, isArchiveName, isEncryptedArchiveName, metaSchema, type BackupMeta, type Scope } from "../format/tables";

/**
 * Stored backups: the Coffer archives in a target, seen through their names
 * and their backup_meta.json. Anything else in the target is not ours and is
 * never listed, served or deleted.
 */

/** The configured backup directory as a target. */
export function currentTarget(inst: Instance): BackupTarget {
  return new LocalDirTarget(currentBackupDir(inst));
}

export interface StoredBackup {
  name: string;
  size: number;
  created_at: string;
  scope: string;
  trigger: string | null;
  verified: boolean | null;
  /** Encrypted (an age file): for which recipients, or with the passphrase. */
  encryption: { mode: "recipients"; recipients: string[] } | { mode: "passphrase" } | { mode: "unknown" } | null;
}

interface MetaCacheEntry {
  size: number;
  modifiedAt: string;
  meta: BackupMeta | null;
}
const metaCacheKey = Symbol.for("coffer.archiveMetaCache");
function metaCache(): Map<string, MetaCacheEntry> {
  const g = globalThis as unknown as Record<symbol, Map<string, MetaCacheEntry>>;
  return (g[metaCacheKey] ??= new Map());
}

/** An archive's backup_meta.json, reading only the first member. Null if unreadable. */
export async function readArchiveMeta(source: Readable): Promise<BackupMeta | null> {
  const extract = tar.extract();
  const feeding = pipeline(source, zlib.createGunzip(), extract).catch(() => {});
  try {
    for await (const entry of extract) {
      if (entry.header.name !== META_NAME || (entry.header.size ?? 0) > 1024 * 1024) return null;
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const parsed = metaSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      return parsed.success ? (parsed.data as BackupMeta) : null;
    }
    return null;
  } catch {
    return null;
  } finally {
    source.destroy();
    extract.destroy();
    await feeding;
  }
}

/** Finished archives in the target, newest first. */
export async function listStoredBackups(inst: Instance, target: BackupTarget = currentTarget(inst)): Promise<StoredBackup[]> {
  const verified = verifiedFiles(inst.db);
  const encryption = fileEncryption(inst.db);
  const cache = metaCache();
  const out: StoredBackup[] = [];
  for (const obj of await target.list()) {
    if (!isArchiveName(obj.name)) continue;
    const encrypted = isEncryptedArchiveName(obj.name);
    const key = `${target.kind}:${target.location}/${obj.name}`;
    let hit = cache.get(key);
    if (!hit || hit.size !== obj.size || hit.modifiedAt !== obj.modifiedAt) {
      // An encrypted archive's meta is inside the ciphertext: its name tells the rest.
      const meta = encrypted ? null : await target.open(obj.name).then(readArchiveMeta, () => null);
      hit = { size: obj.size, modifiedAt: obj.modifiedAt, meta };
      cache.set(key, hit);
    }
    out.push({
      name: obj.name,
      size: obj.size,
      created_at: hit.meta?.created_at ?? archiveNameDate(obj.name)!.toISOString(),
      scope: hit.meta?.scope ?? archiveNameScope(obj.name)!,
      trigger: hit.meta?.trigger ?? null,
      verified: verified.get(obj.name) ?? null,
      encryption: encrypted ? (encryption.get(obj.name) ?? { mode: "unknown" }) : null,
    });
  }
  return out.sort((a, b) => compareArchiveNamesNewestFirst(a.name, b.name));
}

/** A stored backup by name: only archive names are ever served, never joined to a path blindly. */
export async function openStoredBackup(inst: Instance, name: string, target: BackupTarget = currentTarget(inst)): Promise<Readable> {
  if (!isArchiveName(name)) throw notFound("That backup");
  return target.open(name);
}

export async function deleteStoredBackup(inst: Instance, actor: Actor, name: string, target: BackupTarget = currentTarget(inst)): Promise<void> {
  if (!isArchiveName(name)) throw notFound("That backup");
  await target.remove(name);
  audit(inst.db, actor, "backup.delete", name);
}

/** A name no archive in the target has yet (a suffix when two land in the same second). */
export async function freeArchiveName(target: BackupTarget, scope: Scope, at: Date, encrypted = false): Promise<string> {
  const taken = new Set((await target.list()).map((o) => o.name));
  for (let i = 0; i < 10000; i++) {
    const name = archiveBaseName(scope, at, i, encrypted);
    // A plain and an encrypted archive of the same second get different suffixes: one name, one time.
    if (!taken.has(name) && !taken.has(archiveBaseName(scope, at, i, !encrypted))) return name;
  }
  throw new Error("no free archive name");
}

/** Delete what retention says may go; the lock is checked before each deletion. */
export async function pruneBackups(
  inst: Instance,
  target: BackupTarget,
  policy: RetentionPolicy,
  lock: InstanceLock,
  now: Date,
  log: (l: string) => void = console.log,
): Promise<string[]> {
  const verified = verifiedFiles(inst.db);
  const files = (await target.list()).filter((o) => isArchiveName(o.name)).map((o) => ({ name: o.name, verified: verified.get(o.name) === true }));
  const { prune } = planRetention(files, policy, now);
  const pruned: string[] = [];
  for (const name of prune) {
    if (!lock.held()) break;
    await target.remove(name);
    pruned.push(name);
    log(`Pruned backup ${name}`);
    audit(inst.db, systemActor("scheduler"), "backup.prune", name, { mode: policy.mode });
  }
  return pruned;
}
