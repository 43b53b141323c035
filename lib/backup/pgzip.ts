import zlib from "node:zlib";
import { Worker } from "node:worker_threads";
import type { Writable } from "node:stream";
import type { FileHandle } from "node:fs/promises";
import { collectAfter } from "../util/gc";

/**
 * One gzip member written pigz-style: the input is cut into blocks that are
 * deflated in parallel in worker threads, each ending in a sync flush so
 * the pieces concatenate into a single valid deflate stream. The CRC-32 is
 * computed in order on the way in. Lanes and block buffers are long-lived
 * and reused, so memory stays at a few blocks whatever the input.
 */
export interface BlockGzipOptions {
  level?: number;
  blockSize?: number;
  concurrency?: number;
  signal?: AbortSignal;
  /** Awaited before each block of a file is read (a backup gives way to requests here). */
  pace?: () => Promise<void>;
}

// Gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
// An empty final block with fixed Huffman codes: closes the deflate stream.
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/**
 * Worker-thread source that lowers the running thread to nice 10 (Linux
 * priorities are per thread), so a backup's CPU work yields to requests.
 */
export const LOWER_THIS_THREAD = String.raw`
try {
  const tid = Number(require("node:fs").readlinkSync("/proc/thread-self").split("/").pop());
  require("node:os").setPriority(tid, 10);
} catch {}
`;

/**
 * A compression lane: a worker thread that deflates one block at a time
 * (synchronously, on its own thread, so it never occupies libuv's pool that
 * file reads and writes of requests need) at a lower CPU priority than the
 * server (nice 10 on Linux), so on a small machine requests go first and the
 * backup takes what CPU is left. Each block ends in a sync flush with no
 * history kept, so the blocks concatenate into one valid deflate stream.
 */
const LANE_SOURCE = String.raw`
const { parentPort } = require("node:worker_threads");
const zlib = require("node:zlib");
${LOWER_THIS_THREAD}
let sinceGc = 0;
parentPort.on("message", ({ id, block, length, level }) => {
  let out;
  try {
    const input = Buffer.from(block, 0, length);
    out = zlib.deflateRawSync(input, { level, finishFlush: zlib.constants.Z_SYNC_FLUSH, chunkSize: length + 64 * 1024 });
  } catch (err) {
    return parentPort.postMessage({ id, block, error: String((err && err.message) || err) }, [block]);
  }
  // The output is a view of the buffer zlib allocated for this call: hand that over whole, uncopied.
  const own = out.buffer.byteLength >= length + 64 * 1024;
  const buf = own ? out.buffer : new Uint8Array(out).buffer;
  parentPort.postMessage({ id, block, out: buf, offset: own ? out.byteOffset : 0, length: out.length }, [block, buf]);
  sinceGc += length;
  if (globalThis.gc && sinceGc > 4 * 1024 * 1024) {
    sinceGc = 0;
    globalThis.gc({ type: "minor" });
  }
});
`;

/** The block buffer comes back with the result: it travels to the worker and back without a copy. */
interface Compressed {
  out: Buffer;
  block: Buffer;
}

class Lane {
  private readonly worker = new Worker(LANE_SOURCE, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
  private readonly waiting = new Map<number, { resolve: (c: Compressed) => void; reject: (e: Error) => void }>();
  private ids = 0;
  tail: Promise<unknown> = Promise.resolve();

  constructor() {
    this.worker.on("message", ({ id, block, out, offset, length, error }: { id: number; block: ArrayBuffer; out?: ArrayBuffer; offset: number; length: number; error?: string }) => {
      const w = this.waiting.get(id);
      this.waiting.delete(id);
      if (error || !out) w?.reject(new Error(`compression failed: ${error}`));
      else w?.resolve({ out: Buffer.from(out, offset, length), block: Buffer.from(block) });
    });
    const fail = (err: Error) => {
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", () => fail(new Error("the compression worker stopped")));
  }

  /** Compress the first `length` bytes of `block`, a buffer of its own (it is handed to the worker meanwhile). */
  compress(block: Buffer, length: number, level: number): Promise<Compressed> {
    const id = this.ids++;
    return new Promise<Compressed>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, block: block.buffer, length, level }, [block.buffer as ArrayBuffer]);
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
  private readonly pool: Buffer[] = [];
  private block: Buffer;
  private fill = 0;
  private crc = 0;
  private size = 0;
  private readonly inflight: { job: Promise<Compressed> }[] = [];
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
    // Output of one block fits one chunk (deflate's worst case is a little over the input).
    this.lanes = Array.from({ length: opts.concurrency ?? 3 }, () => new Lane());
    this.block = this.takeBuffer();
  }

  async start(): Promise<void> {
    await this.emit(HEADER);
  }

  /** A block buffer with an ArrayBuffer of its own (Buffer.allocUnsafe may hand out a slice of a shared pool). */
  private takeBuffer(): Buffer {
    return this.pool.pop() ?? Buffer.from(new ArrayBuffer(this.blockSize));
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
    const block = this.block;
    const length = this.fill;
    this.crc = zlib.crc32(block.subarray(0, length), this.crc);
    this.size += length;
    const lane = this.lanes[this.next++ % this.lanes.length];
    const level = this.level;
    const job = lane.tail.then(() => lane.compress(block, length, level));
    lane.tail = job.catch(() => {});
    this.inflight.push({ job });
    this.block = this.takeBuffer();
    this.fill = 0;
    while (this.inflight.length >= this.lanes.length) await this.drainOne();
  }

  private async drainOne(): Promise<void> {
    const { out, block } = await this.inflight.shift()!.job;
    this.pool.push(block);
    await this.emit(out);
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
