import crypto from "node:crypto";
import readline from "node:readline";
import { Transform, type Readable } from "node:stream";

/**
 * An archive's seek index (docs/architecture.md#restoring-single-documents):
 * where each deflate block of its gzip stream starts, in the gzip stream and
 * in the tar stream it inflates to (the writer deflates every block on its
 * own, with no shared history, so inflating can start at any of them), and
 * where each tar member's header is. It is kept in a sidecar file beside the
 * archive, not inside it, so every format-v1 reader (tar, every older Coffer)
 * sees the same archive as before.
 *
 * The sidecar comes from outside like the archive: it is only ever a hint.
 * It names the archive's size and the SHA-256 of its first and last 64 KiB,
 * and an index that does not fit the archive now is ignored; whatever it
 * points at is checked (the tar header's name and size, the content's hash)
 * before it counts, and anything that does not check out is read the slow
 * way, in one pass.
 *
 * Text, one record a line, so a reader keeps only the members it wants in
 * memory (an index of a vault of many documents is megabytes):
 *
 *     coffer-seek-index 1
 *     archive <bytes> <sha256 of the first 64 KiB> <sha256 of the last 64 KiB>
 *     envelope plain|age
 *     block <gzip offset> <tar offset>          (ascending, the first at the gzip header's end)
 *     member <tar offset> <size> <name>          (of its header; ascending)
 *     end <blocks> <members>
 *
 * Gzip offsets count bytes of the gzip stream: the archive's own bytes when
 * it is plain, the age payload's plaintext when it is encrypted.
 */

export const SEEK_INDEX_MAGIC = "coffer-seek-index 1";
/** Bytes hashed at each end of the archive to tell it from another of the same size. */
export const FINGERPRINT_BYTES = 64 * 1024;
/** An index larger than this is not written, and not read (the archive is then read in one pass). */
export const MAX_SEEK_INDEX_BYTES = 64 * 1024 * 1024;

export type Envelope = "plain" | "age";

/** What the index says the archive is: enough to tell that it is this archive. */
export interface ArchiveFingerprint {
  size: number;
  head_sha256: string;
  tail_sha256: string;
}

export interface SeekBlock {
  gzip: number;
  tar: number;
}

export interface SeekMember {
  name: string;
  /** Where its 512-byte header starts in the tar stream. */
  offset: number;
  size: number;
}

export interface SeekIndex {
  archive: ArchiveFingerprint;
  envelope: Envelope;
  blocks: SeekBlock[];
  /** The members the reader asked for (by name). */
  members: Map<string, SeekMember>;
}

/** An index that cannot be used (malformed, too large, for another archive): the caller reads in one pass. */
export class SeekIndexUnusable extends Error {}

const SAFE_NAME_RE = /^[A-Za-z0-9._/-]{1,100}$/;

/**
 * Collects the index as the writer goes: blocks as they are written (few: one per MiB of
 * input), members as text chunks of their lines. Past MAX_SEEK_INDEX_BYTES it gives up and
 * the archive gets no index, rather than holding more of the writer's memory.
 */
export class SeekIndexBuilder {
  private readonly blocks: number[] = [];
  private readonly memberChunks: Buffer[] = [];
  private pending = "";
  private members = 0;
  private bytes = 0;
  private lastBlock = -1;
  private lastMember = -1;
  /** Given up (too large, or a record out of order): finish() gives no index. */
  private overflow = false;

  // A record the reader would refuse drops the index instead of failing the backup: an archive without one still restores.
  block(gzipOffset: number, tarOffset: number): void {
    if (this.overflow) return;
    if (tarOffset <= this.lastBlock) return this.abandon();
    this.lastBlock = tarOffset;
    this.blocks.push(gzipOffset, tarOffset);
    this.count(40);
  }

  member(name: string, tarOffset: number, size: number): void {
    if (this.overflow) return;
    if (!SAFE_NAME_RE.test(name) || tarOffset <= this.lastMember || tarOffset % 512 !== 0) return this.abandon();
    this.lastMember = tarOffset;
    const line = `member ${tarOffset} ${size} ${name}\n`;
    this.pending += line;
    this.members++;
    this.count(line.length);
    if (this.pending.length >= 64 * 1024) {
      this.memberChunks.push(Buffer.from(this.pending, "latin1"));
      this.pending = "";
    }
  }

  private count(n: number): void {
    this.bytes += n;
    if (this.bytes > MAX_SEEK_INDEX_BYTES) this.abandon();
  }

  private abandon(): void {
    this.overflow = true;
    this.blocks.length = 0;
    this.memberChunks.length = 0;
    this.pending = "";
  }

  /** The sidecar's bytes for the archive as it was written, or null when there is none to give. */
  finish(archive: ArchiveFingerprint, envelope: Envelope): Buffer | null {
    if (this.overflow || this.blocks.length === 0) return null;
    const head = `${SEEK_INDEX_MAGIC}\narchive ${archive.size} ${archive.head_sha256} ${archive.tail_sha256}\nenvelope ${envelope}\n`;
    let blockLines = "";
    for (let i = 0; i < this.blocks.length; i += 2) blockLines += `block ${this.blocks[i]} ${this.blocks[i + 1]}\n`;
    const tail = `end ${this.blocks.length / 2} ${this.members}\n`;
    return Buffer.concat([Buffer.from(head + blockLines, "latin1"), ...this.memberChunks, Buffer.from(this.pending + tail, "latin1")]);
  }
}

/**
 * A pass-through over the bytes of an archive as they are stored, keeping
 * what its fingerprint needs: the count, the first FINGERPRINT_BYTES and the
 * last FINGERPRINT_BYTES (a few chunks held, never the archive).
 */
export function fingerprintTap(): Transform & { fingerprint: () => ArchiveFingerprint } {
  const head: Buffer[] = [];
  let headBytes = 0;
  let tail: Buffer[] = [];
  let tailBytes = 0;
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      size += chunk.length;
      if (headBytes < FINGERPRINT_BYTES) {
        const part = chunk.subarray(0, FINGERPRINT_BYTES - headBytes);
        head.push(Buffer.from(part));
        headBytes += part.length;
      }
      tail.push(chunk);
      tailBytes += chunk.length;
      while (tail.length > 1 && tailBytes - tail[0].length >= FINGERPRINT_BYTES) tailBytes -= tail.shift()!.length;
      cb(null, chunk);
    },
  });
  const fingerprint = (): ArchiveFingerprint => {
    const last = Buffer.concat(tail);
    tail = [last];
    return { size, head_sha256: sha256(Buffer.concat(head)), tail_sha256: sha256(last.subarray(Math.max(0, last.length - FINGERPRINT_BYTES))) };
  };
  return Object.assign(tap, { fingerprint });
}

const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

/** The byte ranges of the archive its fingerprint hashes (the same range twice for a small one). */
export function fingerprintRanges(size: number): { head: { start: number; end: number }; tail: { start: number; end: number } } {
  return { head: { start: 0, end: Math.min(size, FINGERPRINT_BYTES) }, tail: { start: Math.max(0, size - FINGERPRINT_BYTES), end: size } };
}

/** Does the archive's fingerprint, from its bytes now, match the index's? */
export function fingerprintMatches(index: ArchiveFingerprint, size: number, head: Buffer, tail: Buffer): boolean {
  return index.size === size && sha256(head) === index.head_sha256 && sha256(tail) === index.tail_sha256;
}

const NUM = "(0|[1-9][0-9]{0,15})";
const ARCHIVE_RE = new RegExp(`^archive ${NUM} ([0-9a-f]{64}) ([0-9a-f]{64})$`);
const ENVELOPE_RE = /^envelope (plain|age)$/;
const BLOCK_RE = new RegExp(`^block ${NUM} ${NUM}$`);
const MEMBER_RE = new RegExp(`^member ${NUM} ${NUM} (\\S{1,100})$`);
const END_RE = new RegExp(`^end ${NUM} ${NUM}$`);

function number(s: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new SeekIndexUnusable(`a number out of range: ${s}`);
  return n;
}

/**
 * Parse a sidecar, keeping the members `wanted` names. Every line is checked
 * (its shape, offsets ascending, counts at the end); anything else makes the
 * whole index unusable (SeekIndexUnusable). At most MAX_SEEK_INDEX_BYTES are read.
 */
export async function readSeekIndex(source: Readable, wanted: (name: string) => boolean): Promise<SeekIndex> {
  let bytes = 0;
  const capped = source.pipe(
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        bytes += chunk.length;
        if (bytes > MAX_SEEK_INDEX_BYTES) return cb(new SeekIndexUnusable("the index is too large"));
        cb(null, chunk);
      },
    }),
  );
  source.on("error", (err) => capped.destroy(err));
  const lines = readline.createInterface({ input: capped, crlfDelay: Infinity });
  let state: "magic" | "archive" | "envelope" | "blocks" | "members" | "done" = "magic";
  let archive: ArchiveFingerprint | null = null;
  let envelope: Envelope = "plain";
  const blocks: SeekBlock[] = [];
  const members = new Map<string, SeekMember>();
  let memberCount = 0;
  let lastMember = -1;
  try {
    for await (const line of lines) {
      if (line.length > 400) throw new SeekIndexUnusable("a line is too long");
      if (state === "magic") {
        if (line !== SEEK_INDEX_MAGIC) throw new SeekIndexUnusable("not a seek index (or a version this Coffer does not read)");
        state = "archive";
        continue;
      }
      if (state === "archive") {
        const m = ARCHIVE_RE.exec(line);
        if (!m) throw new SeekIndexUnusable("a bad archive line");
        archive = { size: number(m[1]), head_sha256: m[2], tail_sha256: m[3] };
        state = "envelope";
        continue;
      }
      if (state === "envelope") {
        const m = ENVELOPE_RE.exec(line);
        if (!m) throw new SeekIndexUnusable("a bad envelope line");
        envelope = m[1] as Envelope;
        state = "blocks";
        continue;
      }
      if (state === "done") throw new SeekIndexUnusable("lines after the end");
      const block = state === "blocks" ? BLOCK_RE.exec(line) : null;
      if (block) {
        const b = { gzip: number(block[1]), tar: number(block[2]) };
        const prev = blocks.at(-1);
        if ((prev && (b.gzip <= prev.gzip || b.tar <= prev.tar)) || b.gzip >= archive!.size) throw new SeekIndexUnusable("blocks out of order or past the archive's end");
        blocks.push(b);
        continue;
      }
      const member = MEMBER_RE.exec(line);
      if (member) {
        state = "members";
        const m = { offset: number(member[1]), size: number(member[2]), name: member[3] };
        if (m.offset <= lastMember || m.offset % 512 !== 0 || !SAFE_NAME_RE.test(m.name)) throw new SeekIndexUnusable("members out of order or badly named");
        lastMember = m.offset;
        memberCount++;
        if (wanted(m.name)) {
          if (members.has(m.name)) throw new SeekIndexUnusable(`${m.name} is listed twice`);
          members.set(m.name, m);
        }
        continue;
      }
      const end = END_RE.exec(line);
      if (end) {
        if (number(end[1]) !== blocks.length || number(end[2]) !== memberCount) throw new SeekIndexUnusable("the counts at the end do not match");
        state = "done";
        continue;
      }
      throw new SeekIndexUnusable("a line that is not part of a seek index");
    }
  } catch (err) {
    if (err instanceof SeekIndexUnusable) throw err;
    throw new SeekIndexUnusable(`the index cannot be read: ${(err as Error).message}`, { cause: err });
  } finally {
    lines.close();
    source.destroy();
    capped.destroy();
  }
  if (state !== "done" || !archive || blocks.length === 0) throw new SeekIndexUnusable("the index is incomplete");
  return { archive, envelope, blocks, members };
}

/**
 * Where to read `member` from: the last block starting at or before its
 * header, and the first block starting at or after the end of its content
 * (null: read to the end of the stream).
 */
export function memberSpan(index: SeekIndex, member: SeekMember): { from: SeekBlock; to: SeekBlock | null } | null {
  const { blocks } = index;
  const end = member.offset + 512 + member.size;
  let lo = 0;
  let hi = blocks.length - 1;
  if (blocks[0].tar > member.offset) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (blocks[mid].tar <= member.offset) lo = mid;
    else hi = mid - 1;
  }
  const from = blocks[lo];
  // The first block at or after the content's end, if any.
  let a = lo + 1;
  let b = blocks.length;
  while (a < b) {
    const mid = (a + b) >> 1;
    if (blocks[mid].tar >= end) b = mid;
    else a = mid + 1;
  }
  const to = a < blocks.length ? blocks[a] : null;
  return { from, to };
}
