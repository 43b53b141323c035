import zlib from "node:zlib";
import { Readable, Transform, pipeline } from "node:stream";
import { AGE_CHUNK_BYTES, AGE_SEALED_CHUNK_BYTES, AgeError, createChunkRunDecryptStream, looksLikeAge, openAgePayload, type AgeKeys } from "../../crypto/age";
import { ageArchiveError } from "./reader";
import { parseFileHeader } from "./tar";
import { fingerprintMatches, fingerprintRanges, memberSpan, readSeekIndex, SeekIndexUnusable, type SeekBlock, type SeekIndex, type SeekMember } from "./seek-index";

/**
 * Reading chosen members of an archive through its seek index
 * (seek-index.ts): each run of wanted members is one ranged read from the
 * block at or before the first one's header, decrypted (age) from the chunk
 * holding that block, raw-inflated from there, and walked to each header,
 * which must name that member with that size before its bytes are handed
 * on. Nothing the index says is taken on trust: a seek that does not land on
 * the member it names is a SeekMiss, and the caller reads those members the
 * slow way (the reader, in one pass).
 */

/** The index did not lead to the member it names (or the bytes there did not read): read it in one pass instead. */
export class SeekMiss extends Error {}

/** Ranges of the archive, its size now, and its sidecar: what a seekable source gives. */
export interface SeekableFile {
  size: number;
  open(range: { start: number; end?: number }): Promise<Readable>;
  openIndex(): Promise<Readable | null>;
}

/** What became of an archive's index: none, not one (malformed), another archive's or an older state's, or used. */
export type IndexVerdict = "absent" | "unusable" | "stale" | "used";

/** Consecutive wanted members read in one ranged stream. */
export interface SeekRun {
  from: SeekBlock;
  /** Where the read stops (a block start after the last member's content), or null: the end of the archive. */
  to: SeekBlock | null;
  members: SeekMember[];
}

/** Members closer than this (compressed bytes between one's read and the next's) share a read rather than open another. */
const RUN_GAP_BYTES = 1024 * 1024;

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Drops the first `n` bytes that pass. */
function dropFirst(n: number): Transform {
  let left = n;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return cb();
      }
      const rest = left ? chunk.subarray(left) : chunk;
      left = 0;
      cb(null, rest);
    },
  });
}

/**
 * A position in the inflated tar stream of one run: skips forward, reads a
 * header, hands on a member's bytes. Any failure below it (inflate, age, the
 * file) is a SeekMiss, and the cursor is then dead.
 */
class TarCursor {
  private buf: Buffer = Buffer.alloc(0);
  private dead = false;

  constructor(
    private readonly chunks: AsyncIterator<Buffer>,
    private pos: number,
  ) {}

  private async more(): Promise<void> {
    if (this.dead) throw new SeekMiss("an earlier read of this run failed");
    let r: IteratorResult<Buffer>;
    try {
      r = await this.chunks.next();
    } catch (err) {
      this.dead = true;
      throw new SeekMiss(`the archive does not inflate there: ${(err as Error).message}`, { cause: err });
    }
    if (r.done) {
      this.dead = true;
      throw new SeekMiss("the read ended before the member did");
    }
    this.buf = r.value;
  }

  async skipTo(offset: number): Promise<void> {
    if (offset < this.pos) throw new SeekMiss("the index's members overlap");
    while (this.pos < offset) {
      if (!this.buf.length) await this.more();
      const n = Math.min(this.buf.length, offset - this.pos);
      this.buf = this.buf.subarray(n);
      this.pos += n;
    }
  }

  async read(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.take(n)) parts.push(part);
    return Buffer.concat(parts);
  }

  /** Exactly `n` bytes (or a SeekMiss); abandoned half-way, the cursor is dead. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    try {
      while (left > 0) {
        if (!this.buf.length) await this.more();
        const part = this.buf.subarray(0, Math.min(left, this.buf.length));
        this.buf = this.buf.subarray(part.length);
        this.pos += part.length;
        left -= part.length;
        yield part;
      }
    } finally {
      if (left > 0) this.dead = true;
    }
  }
}

export class SeekableArchive {
  private constructor(
    private readonly file: SeekableFile,
    readonly index: SeekIndex,
    private readonly age: { payloadKey: Buffer; payloadStart: number } | null,
  ) {}

  /**
   * The archive with its index, keeping the entries of the members `wanted` names, or null when
   * there is no usable index for it as it is now (none, malformed, another archive's, a stale one).
   * An encrypted archive's payload key is unwrapped here, once, from its header: a key that does
   * not fit fails as it would for a full read (KEY_MISMATCH, KEY_REQUIRED).
   */
  static async open(file: SeekableFile, wanted: (name: string) => boolean, keys: AgeKeys | undefined): Promise<{ archive: SeekableArchive | null; index: IndexVerdict; indexBytes: number }> {
    const raw = await file.openIndex();
    if (!raw) return { archive: null, index: "absent", indexBytes: 0 };
    let indexBytes = 0;
    raw.on("data", (c: Buffer) => (indexBytes += c.length));
    let index: SeekIndex;
    try {
      index = await readSeekIndex(raw, wanted);
    } catch (err) {
      if (err instanceof SeekIndexUnusable) return { archive: null, index: "unusable", indexBytes };
      throw err;
    }
    if (index.archive.size !== file.size || file.size === 0) return { archive: null, index: "stale", indexBytes };
    const ranges = fingerprintRanges(file.size);
    const head = await readAll(await file.open(ranges.head));
    const tail = await readAll(await file.open(ranges.tail));
    if (!fingerprintMatches(index.archive, file.size, head, tail) || looksLikeAge(head) !== (index.envelope === "age")) return { archive: null, index: "stale", indexBytes };
    let age: { payloadKey: Buffer; payloadStart: number } | null = null;
    if (index.envelope === "age") {
      try {
        age = await openAgePayload(head, keys ?? {});
      } catch (err) {
        // A key that does not open it fails as a full read would; a header that does not parse is for the full read to name.
        if (err instanceof AgeError && err.code !== "ARCHIVE_TAMPERED") throw ageArchiveError(err);
        return { archive: null, index: "unusable", indexBytes };
      }
    }
    return { archive: new SeekableArchive(file, index, age), index: "used", indexBytes };
  }

  /**
   * The wanted members as runs (in archive order, near ones sharing a read), and the names the
   * index does not list (or lists where no block starts before them).
   */
  plan(names: Iterable<string>): { runs: SeekRun[]; unlisted: string[] } {
    const unlisted: string[] = [];
    const spans: { member: SeekMember; from: SeekBlock; to: SeekBlock | null }[] = [];
    for (const name of new Set(names)) {
      const member = this.index.members.get(name);
      const span = member && memberSpan(this.index, member);
      if (member && span) spans.push({ member, ...span });
      else unlisted.push(name);
    }
    spans.sort((a, b) => a.member.offset - b.member.offset);
    const runs: SeekRun[] = [];
    for (const s of spans) {
      const run = runs.at(-1);
      if (run && (run.to === null || s.from.gzip <= run.to.gzip + RUN_GAP_BYTES)) {
        run.members.push(s.member);
        run.to = run.to === null || s.to === null ? null : s.to.gzip > run.to.gzip ? s.to : run.to;
      } else runs.push({ from: s.from, to: s.to, members: [s.member] });
    }
    return { runs, unlisted };
  }

  /** About how many archive bytes the runs read: past half the archive, one pass costs less. */
  cost(runs: SeekRun[]): number {
    const plainEnd = this.age ? Math.floor((this.file.size - this.age.payloadStart) / AGE_SEALED_CHUNK_BYTES) * AGE_CHUNK_BYTES : this.file.size;
    return runs.reduce((a, r) => a + ((r.to?.gzip ?? plainEnd) - r.from.gzip), 0);
  }

  /** The run's gzip stream from its first block on, inflated. */
  private async inflated(run: SeekRun, signal?: AbortSignal): Promise<{ chunks: AsyncIterator<Buffer>; stop: () => void }> {
    const streams: NodeJS.ReadWriteStream[] = [];
    let raw: Readable;
    if (this.age) {
      const { payloadKey, payloadStart } = this.age;
      const first = Math.floor(run.from.gzip / AGE_CHUNK_BYTES);
      const last = run.to === null ? null : Math.ceil(run.to.gzip / AGE_CHUNK_BYTES);
      raw = await this.file.open({ start: payloadStart + first * AGE_SEALED_CHUNK_BYTES, end: last === null ? undefined : Math.min(this.file.size, payloadStart + last * AGE_SEALED_CHUNK_BYTES) });
      streams.push(createChunkRunDecryptStream(payloadKey, first), dropFirst(run.from.gzip - first * AGE_CHUNK_BYTES));
    } else raw = await this.file.open({ start: run.from.gzip, end: run.to?.gzip });
    // A sync flush at the end: the read stops at a block boundary, before the deflate stream's end, and that is no error.
    const inflate = zlib.createInflateRaw({ finishFlush: zlib.constants.Z_SYNC_FLUSH, chunkSize: 64 * 1024 });
    pipeline([raw, ...streams, inflate] as never, () => {});
    const stop = () => {
      raw.destroy();
      inflate.destroy();
    };
    signal?.addEventListener("abort", stop, { once: true });
    inflate.once("close", () => signal?.removeEventListener("abort", stop));
    return { chunks: inflate[Symbol.asyncIterator](), stop };
  }

  /**
   * Each member of the run with its content (exactly its size, after its header checked out); the
   * caller reads each content to its end before asking for the next. A SeekMiss (from here or from
   * a content stream) ends the run: its remaining members are for the one-pass read.
   */
  async *read(run: SeekRun, signal?: AbortSignal): AsyncGenerator<{ member: SeekMember; content: Readable }> {
    const { chunks, stop } = await this.inflated(run, signal);
    try {
      const cursor = new TarCursor(chunks, run.from.tar);
      for (const member of run.members) {
        await cursor.skipTo(member.offset);
        const header = parseFileHeader(await cursor.read(512));
        if (!header || header.name !== member.name || header.size !== member.size) {
          throw new SeekMiss(`the index says ${member.name} starts at ${member.offset}, but ${header ? `${header.name} (${header.size} bytes)` : "no file header"} is there`);
        }
        yield { member, content: Readable.from(cursor.take(member.size), { objectMode: false }) };
      }
    } finally {
      stop();
    }
  }
}
