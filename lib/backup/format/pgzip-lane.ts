/** Sent once to a lane: the shared blocks it reads from and the shared slot it writes to. */
export interface LaneSetup {
  setup: { blocks: SharedArrayBuffer[]; out: SharedArrayBuffer };
}

/** Compress the first `length` bytes of block `slot` at `level`. */
export interface LaneJob {
  id: number;
  slot: number;
  length: number;
  level: number;
}

/** The job's compressed length (its bytes are in the output slot), or why it failed. */
export type LaneReply = { id: number; length: number; error?: undefined } | { id: number; error: string };

/**
 * The body of a compression lane (see `Lane` in pgzip.ts), run in its worker
 * thread from source (worker-source.ts: self-contained, modules via `load`).
 */
export function laneBody(load: NodeJS.Require): void {
  const { parentPort } = load("node:worker_threads") as typeof import("node:worker_threads");
  const zlib = load("node:zlib") as typeof import("node:zlib");
  const port = parentPort!;
  const reply = (r: LaneReply) => port.postMessage(r);
  let blocks: Buffer[] = [];
  let outSlot: Buffer | null = null;
  port.on("message", (m: LaneSetup | LaneJob) => {
    if ("setup" in m) {
      blocks = m.setup.blocks.map((sab) => Buffer.from(sab));
      outSlot = Buffer.from(m.setup.out);
      return;
    }
    const { id, slot, length, level } = m;
    let out: Buffer | null;
    try {
      out = zlib.deflateRawSync(blocks[slot].subarray(0, length), { level, finishFlush: zlib.constants.Z_SYNC_FLUSH, chunkSize: length + 64 * 1024 });
    } catch (err) {
      reply({ id, error: String((err as { message?: unknown } | null | undefined)?.message || err) });
      return;
    }
    // Deflate's worst case is a few bytes per 16 KiB over its input; the slot has 64 KiB to spare.
    if (out.length > outSlot!.length) {
      reply({ id, error: "a block's output is larger than its slot" });
      return;
    }
    out.copy(outSlot!);
    reply({ id, length: out.length });
    // zlib's output for this block is garbage now: free it before the next (a young collection of this small heap, on this thread).
    out = null;
    globalThis.gc?.({ type: "minor" });
  });
}
