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
export function writeFileAtomic(target: string, data: string | Buffer, mode = 0o644): void {
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
  // openSync's mode is filtered by umask; key files must be exactly 0600.
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, target);
  fsyncDir(path.dirname(target));
}
