import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";

/** fsync a directory so a rename inside it survives a crash. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch (err) {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
    if ((err as NodeJS.ErrnoException).code !== "EINVAL" && (err as NodeJS.ErrnoException).code !== "EISDIR") throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** fsyncDir without holding the event loop. */
export async function fsyncDirAsync(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, "r");
    await fh.sync();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EINVAL" && (err as NodeJS.ErrnoException).code !== "EISDIR") throw err;
  } finally {
    await fh?.close();
  }
}

/** Temp name in the same directory, hidden, so it is never mistaken for the real file. */
export function partialPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${crypto.randomBytes(4).toString("hex")}.partial`);
}

/**
 * Write a small file the way restic's local backend does: temp file, fsync,
 * rename, fsync the directory. A crash leaves either the old file or the new one.
 */
export function writeFileAtomic(target: string, data: string | Buffer, mode = 0o600): void {
  const tmp = partialPathFor(target);
  const fd = fs.openSync(tmp, "wx", mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  // openSync's mode is filtered by umask; key files must be exactly 0600 whatever the umask.
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, target);
  fsyncDir(path.dirname(target));
}

/**
 * A write stream over an open FileHandle, for writers that must fsync
 * before closing: `release` closes the handle through its stream, once,
 * whether the stream finished, failed or was never used. (A stream over the
 * bare fd number would close that number when destroyed, and a second close
 * after it could close another file that reused the number; and the
 * handle's own close waits forever while its stream holds it.)
 */
export function handleStream(fh: fs.promises.FileHandle, opts: { highWaterMark?: number } = {}) {
  const out = fh.createWriteStream({ autoClose: false, ...opts });
  const release = async () => {
    if (!out.closed) {
      const closed = new Promise<void>((r) => out.once("close", () => r()));
      out.on("error", () => {}); // already reported to whoever was writing
      out.destroy();
      await closed;
    }
    await fh.close(); // a no-op once the stream has closed it
  };
  return { out, release };
}
