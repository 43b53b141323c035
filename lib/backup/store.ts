import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import type { Instance } from "../instance";
import type { Env } from "../paths";
import { AppError, notFound } from "../errors";
import { audit, type Actor } from "../audit/log";
import { currentSettings } from "../settings/store";
import { fsyncDir } from "../util/fsatomic";
import { writeArchive } from "./archive";
import { readArchive } from "./reader";
import { tryAcquireLease, type Lease } from "./lease";
import { startRun, finishRun, verifiedFiles } from "./runs";
import { ARCHIVE_NAME_RE, META_NAME, archiveBaseName, archiveNameDate, isArchiveName, metaSchema, type BackupMeta, type Scope, type Trigger } from "./format";

export const BACKUP_LEASE = "backup";
const LEASE_TTL_MS = 60_000;

/** Directories a backup directory may be in: the data dir, and COFFER_BACKUP_ROOTS. */
export function backupRoots(inst: Instance, env: Env = process.env): string[] {
  const extra = (env.COFFER_BACKUP_ROOTS ?? "").split(path.delimiter).filter(Boolean);
  return [inst.paths.root, ...extra].map((r) => {
    try {
      return fs.realpathSync(r);
    } catch {
      return path.resolve(r);
    }
  });
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * The configured backup directory. Relative paths are relative to the data
 * dir, and a leading "data/" names the data dir itself (so the default
 * "data/backups" reads naturally). After resolving symlinks it must lie in
 * the data dir or a COFFER_BACKUP_ROOTS directory.
 */
export function resolveBackupDir(inst: Instance, configured: string, env: Env = process.env): string {
  let p = configured.trim();
  if (!path.isAbsolute(p)) {
    p = p.replace(/^\.\//, "");
    if (p === "data" || p.startsWith("data/")) p = p.slice(4).replace(/^\//, "");
    p = path.join(inst.paths.root, p);
  }
  fs.mkdirSync(p, { recursive: true });
  const real = fs.realpathSync(p);
  if (!backupRoots(inst, env).some((r) => inside(real, r))) {
    throw new AppError(422, "BACKUP_DIR_NOT_ALLOWED", `The backup directory ${real} is outside the data directory and COFFER_BACKUP_ROOTS.`);
  }
  return real;
}

export function currentBackupDir(inst: Instance): string {
  return resolveBackupDir(inst, currentSettings(inst.paths.settings).backup.directory);
}

function uniqueArchiveName(dir: string, scope: Scope, at: Date): string {
  for (let i = 0; i < 10000; i++) {
    const name = archiveBaseName(scope, at, i);
    if (!fs.existsSync(path.join(dir, name)) && !fs.existsSync(path.join(dir, `.${name}.partial`))) return name;
  }
  throw new Error("no free archive name");
}

export interface StoredBackupResult {
  runId: number;
  name: string;
  file: string;
  bytes: number;
  meta: BackupMeta;
  verified: boolean;
  /** Milliseconds spent writing the archive and reading it back. */
  timings: { writeMs: number; verifyMs: number };
}

export function acquireBackupLease(inst: Instance): Lease {
  const lease = tryAcquireLease(inst.db, BACKUP_LEASE, LEASE_TTL_MS);
  if (!lease) throw new AppError(409, "BACKUP_RUNNING", "A backup is already running. Wait for it to finish, then try again.");
  return lease;
}

/**
 * Write an archive into the backup directory the way restic's local backend
 * does (hidden .partial, fsync, rename, fsync the directory), then read it
 * back and verify every member. Under the backup lease; recorded in backup_runs.
 */
export async function writeStoredBackup(
  inst: Instance,
  opts: { scope: Scope; trigger: Trigger; actor?: Actor; dir?: string; lease?: Lease; onProgress?: (done: number, total: number) => void },
): Promise<StoredBackupResult> {
  const lease = opts.lease ?? acquireBackupLease(inst);
  const runId = startRun(inst.db, opts.trigger, opts.scope);
  let partial: string | null = null;
  try {
    const dir = opts.dir ?? currentBackupDir(inst);
    const now = new Date();
    const name = uniqueArchiveName(dir, opts.scope, now);
    partial = path.join(dir, `.${name}.partial`);
    const file = path.join(/*turbopackIgnore: true*/ dir, name);
    const fd = fs.openSync(partial, "wx", 0o600);
    const out = fs.createWriteStream("", { fd, autoClose: false, highWaterMark: 1024 * 1024 });
    const abort = new AbortController();
    let lastRenew = Date.now();
    let written;
    const t0 = performance.now();
    try {
      written = await writeArchive(inst, out, {
        scope: opts.scope,
        trigger: opts.trigger,
        now,
        signal: abort.signal,
        onProgress: (done, total) => {
          opts.onProgress?.(done, total);
          if (Date.now() - lastRenew > 5_000) {
            lastRenew = Date.now();
            if (!lease.renew()) abort.abort(new Error("the backup lease was lost to another process"));
          }
        },
      });
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // Another process may have taken over an expired lease: never finalize then.
    if (!lease.held()) throw new Error("the backup lease was lost to another process; this run is abandoned");
    fs.renameSync(partial, file);
    partial = null;
    fsyncDir(dir);
    const t1 = performance.now();
    const summary = await readArchive(fs.createReadStream(file, { highWaterMark: 256 * 1024 }));
    const timings = { writeMs: Math.round(t1 - t0), verifyMs: Math.round(performance.now() - t1) };
    const verified = summary.meta.created_at === written.meta.created_at;
    finishRun(inst.db, runId, { status: "success", file: name, bytes: written.bytes, verified });
    audit(inst.db, opts.actor ?? { id: null, name: opts.trigger === "schedule" ? "scheduler" : "system" }, "backup.create", name, {
      scope: opts.scope,
      trigger: opts.trigger,
      bytes: written.bytes,
    });
    return { runId, name, file, bytes: written.bytes, meta: written.meta, verified, timings };
  } catch (err) {
    if (partial) fs.rmSync(partial, { force: true });
    const message = err instanceof Error ? err.message : String(err);
    finishRun(inst.db, runId, { status: "failed", error: message });
    if (err instanceof AppError) throw err;
    throw new AppError(500, "BACKUP_FAILED", `The backup failed: ${message}`);
  } finally {
    if (!opts.lease) lease.release();
  }
}

export interface StoredBackup {
  name: string;
  size: number;
  created_at: string;
  scope: string;
  trigger: string | null;
  verified: boolean | null;
}

interface MetaCacheEntry {
  size: number;
  mtimeMs: number;
  meta: BackupMeta | null;
}
const metaCacheKey = Symbol.for("coffer.archiveMetaCache");
function metaCache(): Map<string, MetaCacheEntry> {
  const g = globalThis as unknown as Record<symbol, Map<string, MetaCacheEntry>>;
  return (g[metaCacheKey] ??= new Map());
}

/** The archive's backup_meta.json, reading only the first member. Null if unreadable. */
export async function readArchiveMeta(file: string): Promise<BackupMeta | null> {
  const extract = tar.extract();
  const src = fs.createReadStream(file);
  const gunzip = zlib.createGunzip();
  const feeding = pipeline(src, gunzip, extract).catch(() => {});
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
    src.destroy();
    extract.destroy();
    await feeding;
  }
}

/** Finished archives in the backup directory, newest first. Only archive names; only regular files. */
export async function listStoredBackups(inst: Instance, dir = currentBackupDir(inst)): Promise<StoredBackup[]> {
  const verified = verifiedFiles(inst.db);
  const cache = metaCache();
  const out: StoredBackup[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (!isArchiveName(name)) continue;
    const file = path.join(dir, name);
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st || !st.isFile()) continue;
    let hit = cache.get(file);
    if (!hit || hit.size !== st.size || hit.mtimeMs !== st.mtimeMs) {
      hit = { size: st.size, mtimeMs: st.mtimeMs, meta: await readArchiveMeta(file) };
      cache.set(file, hit);
    }
    out.push({
      name,
      size: st.size,
      created_at: hit.meta?.created_at ?? archiveNameDate(name)!.toISOString(),
      scope: hit.meta?.scope ?? ARCHIVE_NAME_RE.exec(name)![1],
      trigger: hit.meta?.trigger ?? null,
      verified: verified.get(name) ?? null,
    });
  }
  return out.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : b.name.localeCompare(a.name)));
}

/** Path of a stored backup by name: the name must be an archive name; it is never joined blindly. */
export function storedBackupFile(inst: Instance, name: string, dir = currentBackupDir(inst)): { file: string; size: number } {
  if (!isArchiveName(name)) throw notFound("That backup");
  const file = path.join(dir, name);
  if (path.dirname(file) !== dir) throw notFound("That backup");
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (!st || !st.isFile()) throw notFound("That backup");
  return { file, size: st.size };
}

export function deleteStoredBackup(inst: Instance, actor: Actor, name: string): void {
  const { file } = storedBackupFile(inst, name);
  fs.rmSync(file);
  fsyncDir(path.dirname(file));
  audit(inst.db, actor, "backup.delete", name);
}

/** Start-up: remove half-written archives left by a process that died. */
export function sweepPartialArchives(dir: string): string[] {
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = /^\.(.+)\.partial$/.exec(name);
    if (m && isArchiveName(m[1])) {
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    }
  }
  return removed;
}

const NOT_FOR_BACKUPS = new Set(["keys", "vault", ".staging", ".tmp", "lost+found"]);

/**
 * Directories the chooser offers: each root (the data dir, COFFER_BACKUP_ROOTS)
 * and the directories directly inside it, after resolving symlinks; ones that
 * resolve outside every root are left out.
 */
export function backupDirChoices(inst: Instance, env: Env = process.env): string[] {
  const roots = backupRoots(inst, env);
  const out = new Set<string>();
  for (const root of roots) {
    if (!fs.existsSync(root)) continue;
    out.add(root);
    for (const e of fs.readdirSync(root, { withFileTypes: true })) {
      if (NOT_FOR_BACKUPS.has(e.name) || e.name.startsWith(".")) continue;
      const p = path.join(root, e.name);
      try {
        const real = fs.realpathSync(p);
        if (fs.statSync(real).isDirectory() && roots.some((r) => inside(real, r))) out.add(real);
      } catch {
        /* dangling link */
      }
    }
  }
  return [...out].sort();
}

/** How a chosen directory is written to settings.yaml: relative ("data/…") when inside the data dir, so it survives a move. */
export function backupDirSetting(inst: Instance, chosen: string): string {
  const root = fs.realpathSync(inst.paths.root);
  const rel = path.relative(root, chosen);
  if (rel === "") return "data";
  if (!rel.startsWith("..") && !path.isAbsolute(rel)) return `data/${rel.split(path.sep).join("/")}`;
  return chosen;
}
