import fs from "node:fs";
import path from "node:path";
import { Readable, type Writable } from "node:stream";
import { notFound } from "../../errors";
import { fsyncDirAsync, handleStream } from "../../util/fsatomic";
import { paceWriteback } from "../../util/writeback";

/** One finished object in a target. */
export interface TargetObject {
  name: string;
  size: number;
  modifiedAt: string;
}

export interface PutOptions {
  /** Called just before the object becomes visible under its name; throwing abandons it. */
  beforeCommit?: () => void;
  /**
   * A small file kept beside the object (an archive's seek index), asked for once the object's bytes
   * are written. It is made visible with the object and removed with it; a target that keeps no
   * sidecars ignores it, and one that cannot be written leaves the object without one.
   */
  sidecar?: () => Buffer | null;
}

/** Part of an object: from `start` (default 0) up to, not including, `end` (default its end). */
export interface ByteRange {
  start?: number;
  end?: number;
}

/**
 * Where backups are kept (restic's backend interface: Save/Load/List/Remove/Stat).
 * An object is only ever visible under its name once it is complete: a
 * writer that dies leaves at most a partial that list() never shows and
 * sweepPartials() removes.
 */
export interface BackupTarget {
  readonly kind: string;
  /** Where the objects are, for people (a directory, a bucket and prefix). */
  readonly location: string;
  /** Stream an object in through `write`, which ends the stream it is given. */
  put(name: string, write: (out: Writable) => Promise<unknown>, opts?: PutOptions): Promise<TargetObject>;
  list(): Promise<TargetObject[]>;
  stat(name: string): Promise<TargetObject | null>;
  /** 404 NOT_FOUND if there is no such finished object. A range past the end gives what there is. */
  open(name: string, range?: ByteRange): Promise<Readable>;
  /** The object's sidecar (PutOptions.sidecar), or null when it has none. As untrusted as the object. */
  openSidecar(name: string): Promise<Readable | null>;
  remove(name: string): Promise<void>;
  /** Remove partial objects left by writers that died; returns what was removed. */
  sweepPartials(): Promise<string[]>;
}

export const READ_CHUNK = 64 * 1024;

/** Names a target accepts: one path segment, no leading dot (those are partials), nothing a shell or URL mangles. */
export const OBJECT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;
const PARTIAL_RE = /^\.(.+)\.partial$/;
/** An object's sidecar: hidden like a partial, so list() never shows it as an object. */
const SIDECAR_RE = /^\.(.+)\.idx$/;

/** A range as a read stream's start and inclusive end, or "empty"; offsets are whole non-negative numbers. */
export function streamRange(range: ByteRange = {}): { start?: number; end?: number } | "empty" {
  const { start = 0, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < 0))) throw new RangeError("a byte range is whole non-negative numbers");
  if (end !== undefined && end <= start) return "empty";
  return { start, end: end === undefined ? undefined : end - 1 };
}

/**
 * A directory on a local filesystem, written the way restic's local backend
 * writes: hidden `.NAME.partial`, fsync, link into place (never over an
 * existing object), fsync the directory. Symlinks are never followed.
 */
export class LocalDirTarget implements BackupTarget {
  readonly kind = "local";
  constructor(readonly dir: string) {}

  get location(): string {
    return this.dir;
  }

  private file(name: string): string {
    if (!OBJECT_NAME_RE.test(name)) throw notFound("That backup");
    return path.join(this.dir, name);
  }

  private sidecarFile(name: string): string {
    if (!OBJECT_NAME_RE.test(name)) throw notFound("That backup");
    return path.join(this.dir, `.${name}.idx`);
  }

  /** Write the sidecar's bytes as a hidden partial (fsynced), or null when there are none or they could not be written. */
  private async writeSidecarPartial(name: string, make: () => Buffer | null): Promise<string | null> {
    const partial = path.join(this.dir, `.${name}.idx.partial`);
    try {
      const data = make();
      if (!data) return null;
      const fh = await fs.promises.open(partial, "wx", 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return partial;
    } catch {
      // Only a hint: the object reads the slow way without it.
      await fs.promises.rm(partial, { force: true }).catch(() => {});
      return null;
    }
  }

  private describe(name: string, st: fs.Stats): TargetObject {
    return { name, size: st.size, modifiedAt: st.mtime.toISOString() };
  }

  async put(name: string, write: (out: Writable) => Promise<unknown>, opts: PutOptions = {}): Promise<TargetObject> {
    const file = this.file(name);
    const partial = path.join(this.dir, `.${name}.partial`);
    // Asynchronous throughout: fsync of a large archive takes long enough to stall the server's event loop.
    const fh = await fs.promises.open(partial, "wx", 0o600);
    let committed = false;
    try {
      const { out, release } = handleStream(fh, { highWaterMark: 1024 * 1024 });
      const pacer = paceWriteback(async () => fh, () => out.bytesWritten);
      try {
        await write(out);
        await pacer.stop();
        if (!out.writableFinished) throw new Error(`the writer of ${name} did not finish its stream`);
        await fh.sync();
      } finally {
        await pacer.stop();
        await release();
      }
      opts.beforeCommit?.();
      const sidecar = opts.sidecar ? await this.writeSidecarPartial(name, opts.sidecar) : null;
      try {
        await fs.promises.link(partial, file); // fails if the name exists: an object is never replaced
      } catch (err) {
        if (sidecar) await fs.promises.rm(sidecar, { force: true });
        throw err;
      }
      committed = true;
      // After the object: a sidecar is never there without its object (a crash in between leaves a partial that sweepPartials removes).
      // A sidecar left by an earlier object of this name (removed behind Coffer's back) is replaced or removed.
      if (sidecar) await fs.promises.rename(sidecar, this.sidecarFile(name)).catch(() => fs.promises.rm(sidecar, { force: true }));
      else await fs.promises.rm(this.sidecarFile(name), { force: true }).catch(() => {});
      await fs.promises.rm(partial, { force: true });
      await fsyncDirAsync(this.dir);
      return this.describe(name, await fs.promises.lstat(file));
    } finally {
      if (!committed) fs.rmSync(partial, { force: true });
    }
  }

  async list(): Promise<TargetObject[]> {
    const out: TargetObject[] = [];
    for (const name of await fs.promises.readdir(this.dir)) {
      if (!OBJECT_NAME_RE.test(name)) continue;
      const st = await fs.promises.lstat(path.join(this.dir, name)).catch(() => null);
      if (st?.isFile()) out.push(this.describe(name, st));
    }
    return out;
  }

  async stat(name: string): Promise<TargetObject | null> {
    if (!OBJECT_NAME_RE.test(name)) return null;
    const st = await fs.promises.lstat(path.join(this.dir, name)).catch(() => null);
    return st?.isFile() ? this.describe(name, st) : null;
  }

  async open(name: string, range?: ByteRange): Promise<Readable> {
    const file = this.file(name);
    const span = streamRange(range);
    let fd: number;
    try {
      // O_NOFOLLOW: a symlink put in the backup directory is never read through.
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch {
      throw notFound("That backup");
    }
    if (!fs.fstatSync(fd).isFile()) {
      fs.closeSync(fd);
      throw notFound("That backup");
    }
    if (span === "empty") {
      fs.closeSync(fd);
      return Readable.from([]);
    }
    // 64 KiB reads: every stage of a reader holds a chunk or two, so large chunks multiply (measured
    // on the benchmark archive: a verification pass adds 9 MiB this way, 38 MiB with 1 MiB chunks).
    return fs.createReadStream("", { fd, highWaterMark: READ_CHUNK, ...span });
  }

  async openSidecar(name: string): Promise<Readable | null> {
    const file = this.sidecarFile(name);
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch {
      return null;
    }
    if (!fs.fstatSync(fd).isFile()) {
      fs.closeSync(fd);
      return null;
    }
    return fs.createReadStream("", { fd, highWaterMark: READ_CHUNK });
  }

  async remove(name: string): Promise<void> {
    const file = this.file(name);
    const st = await fs.promises.lstat(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    });
    if (!st?.isFile()) throw notFound("That backup");
    // The sidecar first: never left behind by a removal that stops half-way.
    await fs.promises.rm(this.sidecarFile(name), { force: true });
    // Asynchronous: unlinking a gigabyte-sized archive takes about a quarter of a second here (ext4 frees its blocks).
    await fs.promises.rm(file);
    await fsyncDirAsync(this.dir);
  }

  async sweepPartials(): Promise<string[]> {
    const removed: string[] = [];
    const names = fs.readdirSync(this.dir);
    const present = new Set(names);
    for (const name of names) {
      const m = PARTIAL_RE.exec(name);
      // A sidecar whose object is gone (deleted by hand): it would only ever be ignored.
      const orphan = SIDECAR_RE.exec(name);
      if ((m && OBJECT_NAME_RE.test(m[1])) || (orphan && OBJECT_NAME_RE.test(orphan[1]) && !present.has(orphan[1]))) {
        fs.rmSync(path.join(this.dir, name), { force: true });
        removed.push(name);
      }
    }
    return removed;
  }
}
