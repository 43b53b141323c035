import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import { AppError } from "./errors";
import { LAYOUT } from "./layout";

/**
 * One lock file in the data directory serialises the jobs that must never
 * overlap, in this process or any other on the same data dir: backup, prune,
 * restore (through the swap), doctor --fix, verification, drills
 * (docs/architecture.md#locks-and-jobs). It lives outside coffer.db on
 * purpose: a restore swaps that file, and a lock inside it would vanish
 * mid-restore.
 *
 * The file is written whole to a temp name and hard-linked into place, so
 * its creation is exclusive (link fails if it exists, like O_EXCL) and no
 * reader ever sees it half-written. A holder whose process is gone is stale:
 * the pid is checked for liveness, and on Linux against the process's start
 * time, so a recycled pid (pid 1 in every container) is not mistaken for it.
 */
export interface LockHolder {
  pid: number;
  purpose: string;
  since: string;
  host: string;
  /** Process start time (clock ticks since boot, /proc/<pid>/stat), where known. */
  start: string | null;
  /** Unique per acquisition: what held() compares. */
  token: string;
}

export interface InstanceLock {
  readonly holder: LockHolder;
  /** Still ours? Checked before anything irreversible (the final rename, each deletion). */
  held(): boolean;
  release(): void;
}

export class LockBusyError extends AppError {
  constructor(readonly holder: LockHolder) {
    super(409, "BUSY", `${describeHolder(holder)} Wait for it to finish, then try again.`);
  }
}

export function describeHolder(h: LockHolder, now = Date.now()): string {
  const secs = Math.max(0, Math.round((now - Date.parse(h.since)) / 1000));
  const ago = secs < 120 ? `${secs} s` : `${Math.round(secs / 60)} min`;
  const who = h.pid === process.pid ? "this server" : `process ${h.pid}`;
  return `Another job is running: ${h.purpose} (${who}, since ${h.since.slice(0, 19).replace("T", " ")} UTC, ${ago} ago).`;
}

function procStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22, counted after the parenthesised command name (which may contain spaces).
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

const SELF_START = procStart(process.pid);
const HOST = os.hostname();

function alive(h: LockHolder): boolean {
  if (h.host !== HOST) return true; // another machine on a shared disk: we cannot tell, so we wait
  if (h.pid === process.pid) return h.start === SELF_START;
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const start = procStart(h.pid);
  return start === null || h.start === null || start === h.start;
}

function readHolder(file: string): LockHolder | null {
  try {
    const h = JSON.parse(fs.readFileSync(file, "utf8")) as LockHolder;
    return typeof h.pid === "number" && typeof h.token === "string" ? h : null;
  } catch {
    return null;
  }
}

/** Who holds the lock of this data dir, if anyone alive does. */
export function lockHolder(root: string): LockHolder | null {
  const h = readHolder(path.join(root, LAYOUT.lock));
  return h && alive(h) ? h : null;
}

/** Take the lock now, or null if a live holder has it. A stale lock is removed first. */
export function tryLock(root: string, purpose: string): InstanceLock | null {
  const file = path.join(root, LAYOUT.lock);
  const holder: LockHolder = {
    pid: process.pid,
    purpose,
    since: new Date().toISOString(),
    host: HOST,
    start: SELF_START,
    token: crypto.randomBytes(12).toString("hex"),
  };
  const tmp = path.join(/*turbopackIgnore: true*/ root, `.${LAYOUT.lock}.${holder.token}`);
  fs.writeFileSync(tmp, JSON.stringify(holder), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.linkSync(tmp, file);
        return makeLock(file, holder);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const current = readHolder(file);
      if (current && alive(current)) return null;
      removeStale(file, current);
    }
    return null;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Move a stale (or unreadable) lock aside. If another taker replaced it in
 * the meantime, put theirs back; should a third have taken it in between,
 * that second holder's held() turns false and it stops before anything
 * irreversible.
 */
function removeStale(file: string, seen: LockHolder | null): void {
  const aside = `${file}.stale-${crypto.randomBytes(6).toString("hex")}`;
  try {
    fs.renameSync(file, aside);
  } catch {
    return; // already gone
  }
  const moved = readHolder(aside);
  if (moved && seen && moved.token !== seen.token && alive(moved)) {
    try {
      fs.linkSync(aside, file);
    } catch {
      /* a third taker holds it now */
    }
  }
  fs.rmSync(aside, { force: true });
}

function makeLock(file: string, holder: LockHolder): InstanceLock {
  let released = false;
  const held = () => !released && readHolder(file)?.token === holder.token;
  return {
    holder,
    held,
    release() {
      if (released) return;
      if (held()) fs.rmSync(file, { force: true });
      released = true;
    },
  };
}

export interface AcquireOptions {
  /** How long to wait for a live holder to finish; 0 answers at once. */
  waitMs?: number;
  pollMs?: number;
}

/** Default wait for callers with a person on the other end (HTTP, the CLI). */
export const LOCK_WAIT_MS = Number(process.env.COFFER_LOCK_WAIT_MS ?? 5_000);

/** Take the lock, waiting up to `waitMs`; then LockBusyError (409 BUSY) naming the holder. */
export async function acquireLock(root: string, purpose: string, opts: AcquireOptions = {}): Promise<InstanceLock> {
  const deadline = Date.now() + (opts.waitMs ?? LOCK_WAIT_MS);
  for (;;) {
    const lock = tryLock(root, purpose);
    if (lock) return lock;
    if (Date.now() >= deadline) {
      const h = lockHolder(root);
      if (!h) continue; // released just now
      throw new LockBusyError(h);
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
  }
}

/** Run `fn` under the lock; it is released whatever happens. */
export async function withLock<T>(root: string, purpose: string, fn: (lock: InstanceLock) => Promise<T>, opts?: AcquireOptions): Promise<T> {
  const lock = await acquireLock(root, purpose, opts);
  try {
    return await fn(lock);
  } finally {
    lock.release();
  }
}
