import fs from "node:fs";

const STEP = 8 * 1024 * 1024;
const EVERY_MS = 50;

export interface WritebackPacer {
  /** Stop pacing; waits for a flush in flight. Never throws: the writer's own final fsync reports errors. */
  stop(): Promise<void>;
}

/**
 * Flushes a file that another party is writing, each time it has grown by
 * `step` bytes. A backup writes a gigabyte or more; left to the kernel, it
 * sits in dirty pages until writeback starts in one burst, and on ext4 every
 * small fsync meanwhile (each upload commits one) waits for the journal,
 * which waits for that burst. Flushing as the file grows keeps each of those
 * waits to a few megabytes of writeback.
 *
 * `size` says how far the file has been written; `open` gives a handle to
 * flush (opened lazily, so the file may not exist yet when pacing starts).
 */
export function paceWriteback(
  open: () => Promise<fs.promises.FileHandle | null>,
  size: (fh: fs.promises.FileHandle) => Promise<number> | number,
  opts: { step?: number; everyMs?: number; owned?: boolean } = {},
): WritebackPacer {
  const step = opts.step ?? STEP;
  let fh: fs.promises.FileHandle | null = null;
  let flushed = 0;
  let busy: Promise<void> | null = null;
  let stopped = false;
  const tick = async () => {
    fh ??= await open();
    if (!fh || stopped) return;
    const now = await size(fh);
    if (now - flushed < step) return;
    await fh.datasync();
    flushed = now;
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = tick()
      .catch(() => {}) // pacing is an optimisation; the final fsync is what must succeed
      .finally(() => (busy = null));
  }, opts.everyMs ?? EVERY_MS);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await busy;
      if (opts.owned && fh) await fh.close().catch(() => {});
    },
  };
}

/** Pace a file written by someone else (SQLite's VACUUM INTO in a worker): open it when it appears, follow its size. */
export function paceFileWriteback(file: string, opts: { step?: number; everyMs?: number } = {}): WritebackPacer {
  return paceWriteback(
    () => fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW).catch(() => null),
    async (fh) => (await fh.stat()).size,
    { ...opts, owned: true },
  );
}
