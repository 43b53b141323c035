import fs from "node:fs";
import path from "node:path";
import { giveWayToRequests } from "../http/edge";

const STEP = 16 * 1024 * 1024;

/**
 * Removes a job's own temporary folder (a gigabyte-sized database snapshot,
 * a drill's restored instance) without holding up requests. On ext4 an
 * unlink frees, and mounted with discard also trims, all of a file's blocks
 * in one journal commit, and every small fsync meanwhile (each upload commits
 * one) waits for that commit: on the benchmark machine, unlinking a 1.1 GB
 * file held an upload-sized fsync for 69 to 96 ms. Each large file is cut
 * down STEP at a time first, each cut committed on its own by an fsync, with
 * `between` awaited after each (by default, requests go first): slowest such
 * fsync 9 ms, for about the same total time.
 *
 * Only for folders no one else reads: a reader would see its file shrink.
 * Best effort, as a plain recursive rm is: nothing here throws.
 */
export async function removeWorkDir(dir: string, between: () => Promise<void> = giveWayToRequests): Promise<void> {
  try {
    for (const entry of await fs.promises.readdir(dir, { withFileTypes: true, recursive: true })) {
      if (entry.isFile()) await shrink(path.join(entry.parentPath, entry.name), between);
    }
  } catch {
    // the rm below removes whatever is left
  }
  await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => {});
}

async function shrink(file: string, between: () => Promise<void>): Promise<void> {
  // One lstat for the many small files (a drill's vault): only a large one is opened.
  if ((await fs.promises.lstat(file)).size <= STEP) return;
  const fh = await fs.promises.open(file, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
  try {
    for (let size = (await fh.stat()).size - STEP; size > 0; size -= STEP) {
      await fh.truncate(size);
      await fh.sync();
      await between();
    }
  } finally {
    await fh.close();
  }
}
