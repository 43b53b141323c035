import zlib from "node:zlib";
import { Worker } from "node:worker_threads";
import type { Writable } from "node:stream";
import type { FileHandle } from "node:fs/promises";
import { collectAfter } from "../../util/gc";
import { laneBody, type LaneJob, type LaneReply, type LaneSetup } from "./pgzip-lane";
import { lowerThisThread, workerSource } from "./worker-source";

/**
 * One gzip member written pigz-style: the input is cut into blocks that are
 * deflated in parallel in worker threads, each ending in a sync flush so
 * the pieces concatenate into a single valid deflate stream. The CRC-32 is
 * computed in order on the way in. Lanes, and the blocks and output slots
 * they share with the main thread, are long-lived and reused: memory stays
 * at a few blocks whatever the input, and only the compressed chunks handed
 * to the destination are new buffers.
 */
export interface BlockGzipOptions {
  level?: number;
  blockSize?: number;
  concurrency?: number;
  signal?: AbortSignal;
  /** Awaited before each block of a file is read (a backup gives way to requests here). */
  pace?: () => Promise<void>;
  /**
   * Called as each deflate block is written, with where it starts in the gzip stream and in the
   * input: every block is deflated on its own, so inflating can start at any of them (the seek index).
   */
  onBlock?: (gzipOffset: number, inputOffset: number) => void;
}

// Gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
// An empty final block with fixed Huffman codes: closes the deflate stream.
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/**
 * A compression lane: a worker thread that deflates one block at a time
 * (synchronously, on its own thread, so it never occupies libuv's pool that
 * file reads and writes of requests need) at a lower CPU priority than the
 * server (nice 10 on Linux), so on a small machine requests go first and the
 * backup takes what CPU is left. Each block ends in a sync flush with no
 * history kept, so the blocks concatenate into one valid deflate stream.
 * It reads its block from, and writes its output to, a SharedArrayBuffer
 * set up once; a message per block carries only numbers. Its body is
 * `laneBody` (pgzip-lane.ts).
 */
const LANE_SOURCE = workerSource(lowerThisThread, laneBody);

class Lane {
  private readonly worker = new Worker(LANE_SOURCE, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
  private readonly waiting = new Map<number, { resolve: (out: Buffer) => void; reject: (e: Error) => void }>();
  private readonly outSlot: Buffer;
  private ids = 0;
  tail: Promise<unknown> = Promise.resolve();

  constructor(blocks: SharedArrayBuffer[], outBytes: number) {
    const out = new SharedArrayBuffer(outBytes);
    this.outSlot = Buffer.from(out);
    this.worker.postMessage({ setup: { blocks, out } } satisfies LaneSetup);
    this.worker.on("message", (reply: LaneReply) => {
      const w = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (reply.error !== undefined) return w?.reject(new Error(`compression failed: ${reply.error}`));
      // Copied out at once, into a buffer the destination may keep: the lane's next block overwrites the slot.
      w?.resolve(Buffer.from(this.outSlot.subarray(0, reply.length)));
    });
    const fail = (err: Error) => {
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", () => fail(new Error("the compression worker stopped")));
  }

  /** Compress the first `length` bytes of shared block `slot` (left untouched until this settles). */
  compress(slot: number, length: number, level: number): Promise<Buffer> {
    const id = this.ids++;
    return new Promise<Buffer>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, slot, length, level } satisfies LaneJob);
    });
  }

  close(): void {
    void this.worker.terminate();
  }
}

function waitDrain(out: Writable, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      out.off("drain", onDrain);
      out.off("error", onError);
      out.off("close", onClose);
      signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (e: Error) => done(e);
    const onClose = () => done(new Error("the destination closed before the archive was complete"));
    const onAbort = () => done(signal!.reason ?? new Error("aborted"));
    out.on("drain", onDrain);
    out.on("error", onError);
    out.on("close", onClose);
    signal?.addEventListener("abort", onAbort);
  });
}

export class BlockGzipWriter {
  private level: number;
  private readonly blockSize: number;
  private readonly lanes: Lane[];
  private next = 0;
  private readonly signal?: AbortSignal;
  private readonly pace?: () => Promise<void>;
  private readonly onBlock?: (gzipOffset: number, inputOffset: number) => void;
  private readonly blocks: Buffer[];
  private readonly free: number[];
  private slot: number;
  private block: Buffer;
  private fill = 0;
  private crc = 0;
  private size = 0;
  private readonly inflight: { job: Promise<Buffer>; slot: number; inputOffset: number }[] = [];
  /** Compressed bytes written to the destination so far. */
  bytesOut = 0;

  constructor(
    private readonly out: Writable,
    opts: BlockGzipOptions = {},
  ) {
    this.level = opts.level ?? 1;
    this.blockSize = opts.blockSize ?? 1024 * 1024;
    this.signal = opts.signal;
    this.pace = opts.pace;
    this.onBlock = opts.onBlock;
    const concurrency = opts.concurrency ?? 3;
    // Blocks live in memory shared with the lanes, so no buffer changes hands
    // per block: a transferred ArrayBuffer is a new object on each side, and a
    // gigabyte of them kept V8 running a full collection every few hundred ms.
    const shared = Array.from({ length: concurrency + 1 }, () => new SharedArrayBuffer(this.blockSize));
    this.blocks = shared.map((sab) => Buffer.from(sab));
    this.free = shared.map((_, i) => i).reverse();
    // Deflate's worst case is a little over its input.
    this.lanes = Array.from({ length: concurrency }, () => new Lane(shared, this.blockSize + 64 * 1024));
    this.slot = this.free.pop()!;
    this.block = this.blocks[this.slot];
  }

  async start(): Promise<void> {
    await this.emit(HEADER);
  }

  private async emit(buf: Buffer): Promise<void> {
    this.signal?.throwIfAborted();
    collectAfter(buf.length);
    this.bytesOut += buf.length;
    if (!this.out.write(buf)) await waitDrain(this.out, this.signal);
  }

  /** Hand the current block to a lane; write finished blocks in order. */
  private async dispatch(): Promise<void> {
    if (this.fill === 0) return;
    const slot = this.slot;
    const length = this.fill;
    this.crc = zlib.crc32(this.block.subarray(0, length), this.crc);
    const inputOffset = this.size;
    this.size += length;
    const lane = this.lanes[this.next++ % this.lanes.length];
    const level = this.level;
    const job = lane.tail.then(() => lane.compress(slot, length, level));
    lane.tail = job.catch(() => {});
    this.inflight.push({ job, slot, inputOffset });
    this.fill = 0;
    while (this.inflight.length >= this.lanes.length) await this.drainOne();
    this.slot = this.free.pop()!;
    this.block = this.blocks[this.slot];
  }

  private async drainOne(): Promise<void> {
    const { job, slot, inputOffset } = this.inflight.shift()!;
    const out = await job;
    this.free.push(slot);
    this.onBlock?.(this.bytesOut, inputOffset);
    await this.emit(out);
  }

  /** Input bytes taken so far: where the next byte written will be in the uncompressed stream. */
  get position(): number {
    return this.size + this.fill;
  }

  async write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(this.blockSize - this.fill, data.length - off);
      data.copy(this.block, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill === this.blockSize) await this.dispatch();
    }
  }

  /** Copy `length` bytes of an open file straight into block buffers; returns bytes read. */
  async writeFile(fh: FileHandle, length: number, onChunk?: (n: number) => void): Promise<number> {
    let pos = 0;
    while (pos < length) {
      await this.pace?.();
      this.signal?.throwIfAborted();
      const want = Math.min(this.blockSize - this.fill, length - pos);
      const { bytesRead } = await fh.read(this.block, this.fill, want, pos);
      if (bytesRead === 0) break;
      this.fill += bytesRead;
      pos += bytesRead;
      onChunk?.(bytesRead);
      if (this.fill === this.blockSize) await this.dispatch();
    }
    return pos;
  }

  /** Following data is compressed at `level` (0 stores it: for data that is already compressed). */
  async setLevel(level: number): Promise<void> {
    if (level === this.level) return;
    await this.dispatch();
    this.level = level;
  }

  async finish(): Promise<void> {
    await this.dispatch();
    while (this.inflight.length) await this.drainOne();
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.size % 2 ** 32, 4);
    await this.emit(Buffer.concat([FINAL_BLOCK, trailer]));
  }

  /** Frees the deflate streams; call whether the archive finished or failed. */
  close(): void {
    for (const l of this.lanes) l.close();
  }
}
