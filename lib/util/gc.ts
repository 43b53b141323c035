/**
 * Streaming an archive allocates a fresh buffer per chunk, and V8 frees
 * buffers only when a collection runs, which with few JS objects allocated
 * waits until tens of MiB of dead buffers pile up. When the process runs
 * with --expose-gc (npm start does), a young-generation collection (well
 * under a millisecond) every 4 MiB of archive bytes, read or written,
 * anywhere in the process, frees them as they die. Measured on the 2.1 GiB
 * benchmark: a full backup's added memory 59 → 40 MiB, at no cost in time
 * (a major collection every 64 MiB, the previous way, saved less).
 */
const exposed = (globalThis as { gc?: (opts?: { type?: "minor" | "major" }) => void }).gc;
const EVERY_BYTES = 4 * 1024 * 1024;
let counted = 0;

export function collectAfter(bytes: number): void {
  if (!exposed) return;
  counted += bytes;
  if (counted < EVERY_BYTES) return;
  counted = 0;
  exposed({ type: "minor" });
}

/**
 * A full collection now, where one phase of long work ends and another with
 * different buffers begins (a job's local archive, then its offsite part):
 * what the first left behind is freed before the second adds its own.
 */
export function collectNow(): void {
  exposed?.({ type: "major" });
  counted = 0;
}
