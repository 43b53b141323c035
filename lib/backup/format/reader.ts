import zlib from "node:zlib";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { AppError, type ErrorCode } from "../../errors";
import { collectAfter } from "../../util/gc";
import { hashingTap } from "../../util/hashing";
import { tarSize } from "./tar";
import { AGE_MAGIC, AgeError, createDecryptStream, looksLikeAge, type AgeKeys } from "../../crypto/age";
import { SCHEMA_VERSION } from "../../db/migrations";
import { APP_VERSION } from "../../version";
import {
  BLOB_MEMBER_RE,
  DIR_MEMBERS,
  FORMAT_VERSION,
  INSTANCE_MEMBERS,
  MAGIC,
  META_NAME,
  TRIGGERS,
  VAULT_DIR_RE,
  isScope,
  memberAllowed,
  metaSchema,
  scopeHasInstance,
  type BackupMeta,
} from "./tables";

/** A rejected archive: a stable code and a sentence for the person who chose the file. */
export class ArchiveError extends AppError {
  constructor(code: ErrorCode, message: string, status: 400 | 413 | 422 = 422, options?: { cause?: unknown }) {
    super(status, code, message, undefined, options);
  }
}

export interface ReadArchiveOptions {
  /** Cap on unpacked bytes. */
  maxBytes?: number;
  maxEntries?: number;
  /**
   * Receives each regular-file member's content as it streams by (restore
   * staging writes it to disk). The archive is validated either way.
   */
  onMember?: (name: string, content: Readable) => Promise<void>;
  /** Called once backup_meta.json has been read and checked, before any other member. */
  onMeta?: (meta: BackupMeta) => void;
  /** Keys for an encrypted (age) archive, held in memory for this read only. */
  keys?: AgeKeys;
  /**
   * Called after each member was read and checked: true stops reading there
   * (the rest of the archive is never read, so its end-of-archive checks are
   * not made; the summary says `stopped`). Browsing a backup stops after coffer.db.
   */
  stopAfter?: (name: string) => boolean;
}

export interface ArchiveSummary {
  meta: BackupMeta;
  warnings: string[];
  /** Compressed bytes read. */
  compressedBytes: number;
  /** Unpacked bytes of all members. */
  unpackedBytes: number;
  /** How the archive was encrypted, or null for a plain .tar.gz. */
  encryption: "age" | null;
  /** Reading stopped early at the caller's request (stopAfter): only the members up to there were checked. */
  stopped: boolean;
}

const MAX_META_BYTES = 1024 * 1024;
const DEFAULT_MAX_ENTRIES = 2_000_000;

// eslint-disable-next-line no-control-regex
const BAD_CHARS = /[\u0000-\u001f\u007f\\]/;

function checkName(name: string): void {
  if (BAD_CHARS.test(name)) throw new ArchiveError("ARCHIVE_BAD_PATH", `The archive contains a file name with a backslash or control character: ${JSON.stringify(name)}.`);
  if (name.startsWith("/") || name.split("/").some((p) => p === ".." || p === ".")) {
    throw new ArchiveError("ARCHIVE_BAD_PATH", `The archive contains a path that points outside where it would be unpacked: ${JSON.stringify(name)}.`);
  }
}

function parseMeta(raw: Buffer): { meta: BackupMeta; warnings: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new ArchiveError("META_INVALID", "The archive's backup_meta.json is not valid JSON.");
  }
  if (!json || typeof json !== "object" || (json as { magic?: unknown }).magic !== MAGIC) {
    throw new ArchiveError("META_BAD_MAGIC", "This is not a Coffer backup (backup_meta.json does not say coffer-backup).");
  }
  const fv = (json as { format_version?: unknown }).format_version;
  const made = (json as { app_version?: unknown }).app_version;
  const madeBy = typeof made === "string" ? made.slice(0, 40) : null;
  const by = madeBy ? `Coffer ${madeBy}` : "a newer Coffer";
  const upgradeTo = madeBy ?? "a newer version";
  if (typeof fv === "number" && fv > FORMAT_VERSION) {
    throw new ArchiveError("FORMAT_TOO_NEW", `This backup was made by ${by} (archive format ${fv}); this is Coffer ${APP_VERSION}, which reads format ${FORMAT_VERSION}. Upgrade Coffer to ${upgradeTo} or later, then restore.`);
  }
  const sv = (json as { schema_version?: unknown }).schema_version;
  if (typeof sv === "number" && sv > SCHEMA_VERSION) {
    // Migrations only go forward: this Coffer would run on a database it does not understand.
    throw new ArchiveError("FORMAT_TOO_NEW", `This backup was made by ${by} (database schema ${sv}); this is Coffer ${APP_VERSION} (schema ${SCHEMA_VERSION}). Upgrade Coffer to ${upgradeTo} or later, then restore.`);
  }
  const parsed = metaSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ArchiveError("META_INVALID", `The archive's backup_meta.json is not valid: ${i.path.join(".") || "(top)"}: ${i.message}.`);
  }
  const meta = parsed.data as BackupMeta;
  if (!isScope(meta.scope)) throw new ArchiveError("META_INVALID", `The archive has an unknown scope "${meta.scope}".`);
  if (!(TRIGGERS as readonly string[]).includes(meta.trigger)) throw new ArchiveError("META_INVALID", `The archive has an unknown trigger "${meta.trigger}".`);
  for (const name of Object.keys(meta.members)) {
    if (!(INSTANCE_MEMBERS as readonly string[]).includes(name) || !scopeHasInstance(meta.scope)) {
      throw new ArchiveError("META_INVALID", `backup_meta.json lists a member that a ${meta.scope} backup cannot have: ${name}.`);
    }
  }
  if (scopeHasInstance(meta.scope)) {
    for (const m of INSTANCE_MEMBERS) if (!meta.members[m]) throw new ArchiveError("META_INVALID", `backup_meta.json does not list ${m}.`);
  }
  return { meta, warnings: [] };
}

function headerSize(h: Buffer): number {
  const n = tarSize(h);
  if (!Number.isFinite(n) || n < 0) throw new ArchiveError("ARCHIVE_CORRUPT", "The archive has a damaged entry header (bad size).");
  return n;
}

/**
 * Walks the tar stream's framing (headers and padded bodies) as it passes to
 * the parser, which on its own skips zero blocks and keeps reading: anything
 * after the end-of-archive marker is refused, and a stream that ends without
 * the marker is truncated.
 */
function tarFraming(): Transform & { ended: () => boolean } {
  let skip = 0; // body bytes still to pass before the next header
  let pending = Buffer.alloc(0);
  let zeroBlocks = 0;
  const t = new Transform({
    transform(chunk: Buffer, _e, cb) {
      try {
        let off = 0;
        while (off < chunk.length) {
          if (skip > 0) {
            const n = Math.min(skip, chunk.length - off);
            skip -= n;
            off += n;
            continue;
          }
          const need = 512 - pending.length;
          const take = chunk.subarray(off, off + need);
          off += take.length;
          pending = pending.length ? Buffer.concat([pending, take]) : Buffer.from(take);
          if (pending.length < 512) break;
          const header = pending;
          pending = Buffer.alloc(0);
          if (header.every((b) => b === 0)) {
            zeroBlocks++;
            continue;
          }
          if (zeroBlocks >= 2) throw new ArchiveError("ARCHIVE_TRAILING_DATA", "The archive has extra data after its end: it may be damaged or two files joined together.");
          if (zeroBlocks > 0) throw new ArchiveError("ARCHIVE_AFTER_END", "The archive has entries after its end-of-archive marker, where other tools would not see them.");
          skip = Math.ceil(headerSize(header) / 512) * 512;
        }
        cb(null, chunk);
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  return Object.assign(t, { ended: () => zeroBlocks >= 2 && skip === 0 && pending.length === 0 });
}

/**
 * One step of the reader's chain (decode → tar framing → validation). Each
 * stage counts the bytes it takes in and gives out, and is the only one that
 * turns its own streams' errors into ARCHIVE_* errors: a full disk while
 * staging is not a damaged archive.
 */
export interface ReadStage {
  readonly name: string;
  /** The stage's streams, in order. */
  readonly streams: Transform[];
  readonly bytesIn: () => number;
  readonly bytesOut: () => number;
  /** What to tell the person when one of this stage's streams failed. */
  explain(err: Error & { code?: string }): ArchiveError;
  /** Checks only the whole stream can answer, after it ended. */
  finish(): void;
}

/**
 * Counts the bytes that pass. `collect`: also count them towards the next
 * young-generation collection (lib/util/gc.ts). Only one counter in a read
 * does (the tar stage's input, the unpacked stream every archive has): each
 * forced collection costs a few milliseconds in the server, and with all
 * three counters of a plain archive counting, a restore forced one every
 * 1.5 MiB of archive instead of every 4 MiB of it unpacked.
 */
function counter(collect = false): Transform & { bytes: number } {
  const c: Transform & { bytes: number } = Object.assign(
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        c.bytes += chunk.length;
        if (collect) collectAfter(chunk.length);
        cb(null, chunk);
      },
    }),
    { bytes: 0 },
  );
  return c;
}

const NOT_GZIP = () => new ArchiveError("ARCHIVE_NOT_GZIP", "This file is not a gzip-compressed archive (.tar.gz).", 400);
const TRAILING = () => new ArchiveError("ARCHIVE_TRAILING_DATA", "The archive has extra bytes after its end: it may be damaged or two files joined together.");

/** A decode stage: one transform between two byte counters. */
function decodeStage(
  name: string,
  decoder: Transform,
  explain: (err: Error & { code?: string }, bytes: { in: number; out: number }) => ArchiveError,
  finish: (bytesIn: number) => void,
): ReadStage {
  const input = counter();
  const output = counter();
  return {
    name,
    streams: [input, decoder, output],
    bytesIn: () => input.bytes,
    bytesOut: () => output.bytes,
    explain: (err) => explain(err, { in: input.bytes, out: output.bytes }),
    finish: () => finish(input.bytes),
  };
}

/** gzip → tar. Bytes after the one gzip member are refused. */
export function gunzipStage(): ReadStage {
  const gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 });
  return decodeStage(
    "gzip",
    gunzip,
    (err, bytes) => {
      // Bytes after a complete gzip member that are not another member.
      if (err.code === "Z_DATA_ERROR" && bytes.out > 0 && /header/i.test(err.message)) return TRAILING();
      if (err.code === "Z_DATA_ERROR" && (bytes.in <= 10 || /header/i.test(err.message))) return NOT_GZIP();
      if (err.code === "Z_BUF_ERROR" || /unexpected end/i.test(err.message)) return new ArchiveError("ARCHIVE_TRUNCATED", "The archive ends too early: it is truncated (an incomplete download or copy?).");
      return new ArchiveError("ARCHIVE_CORRUPT", "The archive's compressed data is damaged.");
    },
    (bytesIn) => {
      if (gunzip.bytesWritten < bytesIn) throw TRAILING();
    },
  );
}

const AGE_STATUS: Record<AgeError["code"], 400 | 422> = { KEY_REQUIRED: 400, KEY_INVALID: 400, KEY_MISMATCH: 422, ARCHIVE_TAMPERED: 422, AGE_UNSUPPORTED: 422 };

export const ageArchiveError = (e: AgeError) => new ArchiveError(e.code, e.message, AGE_STATUS[e.code]);

/** age → gzip. Nothing it passes on has not authenticated; the stream must end in a valid final chunk. */
export function ageStage(keys: AgeKeys): ReadStage {
  const decrypt = createDecryptStream(keys);
  return decodeStage(
    "age",
    decrypt,
    (err) => (err instanceof AgeError ? ageArchiveError(err) : new ArchiveError("ARCHIVE_TAMPERED", "The encrypted backup cannot be read: it is damaged.")),
    () => {
      if (!decrypt.finished()) throw new ArchiveError("ARCHIVE_TAMPERED", "The encrypted backup is truncated: its final part is missing.");
    },
  );
}

/**
 * The first `n` bytes of a stream, and the whole stream again (those bytes
 * included): read, then put back with unshift, so the rest flows from the
 * source itself. (An async generator wrapped in Readable.from, the earlier
 * way, added two promises to every chunk of the archive: about 90 µs per
 * 16 KiB chunk, which is what an upload arrives in.)
 */
async function peek(source: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const parts: Buffer[] = [];
  let len = 0;
  while (len < n) {
    if (source.errored) throw source.errored;
    const chunk = source.read() as Buffer | null;
    if (chunk !== null) {
      parts.push(chunk);
      len += chunk.length;
      continue;
    }
    if (source.readableEnded || source.destroyed) break;
    const ended = await new Promise<boolean>((resolve, reject) => {
      const off = () => {
        source.off("readable", onReadable);
        source.off("end", onEnd);
        source.off("close", onEnd);
        source.off("error", onError);
      };
      const onReadable = () => (off(), resolve(false));
      const onEnd = () => (off(), resolve(true));
      const onError = (e: Error) => (off(), reject(e));
      source.on("readable", onReadable);
      source.on("end", onEnd);
      source.on("close", onEnd);
      source.on("error", onError);
    });
    if (ended) break;
  }
  if (source.errored) throw source.errored;
  const head = Buffer.concat(parts);
  if (head.length && !source.readableEnded) source.unshift(head);
  else if (head.length) return { head, stream: Readable.from([head], { objectMode: false }) };
  return { head, stream: source };
}

/** The tar stream's framing and headers; entries come out of `extract`. */
function tarStage(): ReadStage & { extract: tar.Extract; ended: () => boolean } {
  const input = counter(true);
  const framing = tarFraming();
  const extract = tar.extract();
  return {
    name: "tar",
    streams: [input, framing],
    extract,
    ended: framing.ended,
    bytesIn: () => input.bytes,
    bytesOut: () => input.bytes,
    explain(err) {
      if (/unexpected end|premature/i.test(err.message)) return new ArchiveError("ARCHIVE_TRUNCATED", "The archive ends too early: it is truncated (an incomplete download or copy?).");
      return new ArchiveError("ARCHIVE_CORRUPT", `The archive's tar structure is damaged (${err.message.replace(/\.$/, "")}).`);
    },
    finish() {
      if (!framing.ended()) throw new ArchiveError("ARCHIVE_TRUNCATED", "The archive ends too early: its end-of-archive marker is missing (an incomplete download or copy?).");
    },
  };
}

/** An error raised by the onMember sink (staging writes), not by the archive. */
class SinkError extends Error {
  constructor(readonly original: unknown) {
    super("sink failed");
  }
}

/**
 * Read a .tar.gz stream and check it against archive format v1 as it goes:
 * entry types, names, order, duplicates, sizes and SHA-256 of every member,
 * blob names against their content, counts against the meta, caps.
 * The single validator behind verify, restore staging and the CLI.
 */
export async function readArchive(original: Readable, opts: ReadArchiveOptions = {}): Promise<ArchiveSummary> {
  const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  // Whose stream failed first decides what the person is told.
  const origin = new Map<unknown, ReadStage | "source">();
  original.on("error", (e) => origin.has(e) || origin.set(e, "source"));

  // An age file (recognised by its first line) is decrypted first; a plain .tar.gz goes straight to gunzip.
  let peeked: Awaited<ReturnType<typeof peek>>;
  try {
    peeked = await peek(original, AGE_MAGIC.length);
  } catch (err) {
    original.destroy();
    throw explainReadError(err, origin, tarStage());
  }
  const source = peeked.stream;
  source.on("error", (e) => origin.has(e) || origin.set(e, "source"));
  const encrypted = looksLikeAge(peeked.head);
  if (encrypted && !opts.keys?.identities?.length && opts.keys?.passphrase === undefined) {
    original.destroy();
    throw ageArchiveError(new AgeError("KEY_REQUIRED", "This backup is encrypted: give its age identity (AGE-SECRET-KEY-1…, from the recovery kit) or its passphrase to read it."));
  }
  const decode = encrypted ? [ageStage(opts.keys!), gunzipStage()] : [gunzipStage()];
  const tarred = tarStage();
  const stages: ReadStage[] = [...decode, tarred];
  const extract = tarred.extract;
  for (const st of stages) for (const s of st.streams) s.on("error", (e) => origin.has(e) || origin.set(e, st));
  extract.on("error", (e) => origin.has(e) || origin.set(e, tarred));

  let meta: BackupMeta | null = null;
  let warnings: string[] = [];
  let entries = 0;
  let unpacked = 0;
  let blobs = 0;
  let blobBytes = 0;
  const seen = new Set<string>();
  let stopped = false;

  const consume = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = h.name;
      entries++;
      if (entries > maxEntries) throw new ArchiveError("TOO_MANY_ENTRIES", `The archive has more than ${maxEntries} entries.`, 413);
      checkName(name);
      if (seen.has(name)) throw new ArchiveError("ARCHIVE_DUPLICATE_MEMBER", `The archive contains ${name} twice.`);
      seen.add(name);

      if (h.type === "directory") {
        if (!meta) throw new ArchiveError("META_MISSING", "The archive does not start with backup_meta.json, so it is not a Coffer backup.");
        if (!DIR_MEMBERS.has(name) && !VAULT_DIR_RE.test(name)) throw new ArchiveError("ARCHIVE_BAD_MEMBER", `The archive contains a directory Coffer does not know: ${name}.`);
        entry.resume();
        continue;
      }
      if (h.type !== "file") {
        throw new ArchiveError("ARCHIVE_BAD_ENTRY_TYPE", `The archive contains ${name}, which is a ${h.type ?? "special"} entry; only regular files are allowed.`);
      }
      const size = h.size ?? 0;
      unpacked += size;
      if (unpacked > maxBytes) throw new ArchiveError("TOO_LARGE", "The archive unpacks to more than this server allows (COFFER_RESTORE_MAX_BYTES or free disk).", 413);

      if (!meta) {
        if (name !== META_NAME) throw new ArchiveError("META_MISSING", "The archive does not start with backup_meta.json, so it is not a Coffer backup.");
        if (size > MAX_META_BYTES) throw new ArchiveError("META_INVALID", "The archive's backup_meta.json is too large.");
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        ({ meta, warnings } = parseMeta(Buffer.concat(chunks)));
        opts.onMeta?.(meta);
        continue;
      }
      if (name === META_NAME || !memberAllowed(name, meta.scope)) {
        throw new ArchiveError("ARCHIVE_BAD_MEMBER", `The archive contains ${name}, which does not belong in a ${meta.scope} backup.`);
      }
      const blob = BLOB_MEMBER_RE.exec(name);
      if (blob && blob[1] !== blob[2].slice(0, 2)) throw new ArchiveError("ARCHIVE_BAD_MEMBER", `The archive contains a blob in the wrong folder: ${name}.`);

      const hasher = hashingTap();
      if (opts.onMember) {
        const [sink, feed] = await Promise.allSettled([opts.onMember(name, hasher), pipeline(entry, hasher)]);
        if (sink.status === "rejected") throw sink.reason instanceof AppError ? sink.reason : new SinkError(sink.reason);
        if (feed.status === "rejected") throw feed.reason;
      } else {
        hasher.resume();
        await pipeline(entry, hasher);
      }
      const digest = hasher.digest();
      if (hasher.bytes() !== size) throw new ArchiveError("ARCHIVE_TRUNCATED", `The archive ends in the middle of ${name}.`);
      if (blob) {
        if (digest !== blob[2]) throw new ArchiveError("CHECKSUM_MISMATCH", `A document blob is damaged: its content does not match its name (${name}).`);
        blobs++;
        blobBytes += size;
      } else {
        const want = meta.members[name];
        if (!want || want.size !== size || want.sha256 !== digest) {
          throw new ArchiveError("CHECKSUM_MISMATCH", `The archive's ${name} does not match the size or checksum recorded in backup_meta.json: the archive is damaged.`);
        }
      }
      if (opts.stopAfter?.(name)) {
        // Leaving the loop destroys the parser; the rest of the file is never read.
        stopped = true;
        original.destroy();
        source.destroy();
        return;
      }
    }
  })();

  try {
    const piped = pipeline([source, ...stages.flatMap((st) => st.streams), extract] as never).catch((err: unknown) => {
      if (!stopped) throw err;
    });
    await Promise.all([piped, consume]);
    if (!stopped) for (const st of stages) st.finish();
  } catch (err) {
    source.destroy();
    original.destroy();
    extract.destroy();
    // Rejected only once the caller's onMember has stopped too: a member still being written when the
    // archive failed would otherwise land in a directory its caller is already removing (ENOTEMPTY,
    // seen on Node 24), and that error would hide this one. Destroyed streams end it at once; the
    // bound is for a callback that ignores them.
    await Promise.race([consume.catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
    throw explainReadError(err, origin, tarred);
  }
  if (!meta) throw new ArchiveError("META_MISSING", "The archive is empty or does not contain backup_meta.json.");
  const m = meta as BackupMeta;
  if (stopped) return { meta: m, warnings, compressedBytes: stages[0].bytesIn(), unpackedBytes: unpacked, encryption: encrypted ? "age" : null, stopped: true };
  for (const name of Object.keys(m.members)) {
    if (!seen.has(name)) throw new ArchiveError("ARCHIVE_MISSING_MEMBER", `The archive is missing ${name}, which backup_meta.json lists.`);
  }
  if (blobs !== m.vault.objects || blobBytes !== m.vault.bytes) {
    throw new ArchiveError("VAULT_INCOMPLETE", `The archive holds ${blobs} document blobs (${blobBytes} bytes) but backup_meta.json says ${m.vault.objects} (${m.vault.bytes} bytes).`);
  }
  return { meta: m, warnings, compressedBytes: stages[0].bytesIn(), unpackedBytes: unpacked, encryption: encrypted ? "age" : null, stopped: false };
}

/**
 * Only what the archive's own stream raised becomes ARCHIVE_*. The sink's
 * errors (a full disk while staging) pass through as they are; a source that
 * failed (an upload cut off) says so.
 */
function explainReadError(err: unknown, origin: Map<unknown, ReadStage | "source">, tarred: ReadStage): unknown {
  if (err instanceof SinkError) return err.original;
  if (err instanceof AppError) return err;
  const e = err as Error & { code?: string; syscall?: string };
  const from = origin.get(err);
  if (from === "source") {
    if (e.syscall) return err; // a file that could not be read: not the archive's fault, not the person's
    return new AppError(400, "UPLOAD_INTERRUPTED", "The backup stopped arriving before its end: the upload was interrupted. Try again.");
  }
  if (from) return from.explain(e);
  // An entry's stream closed early: the tar parser saw the data end inside it.
  return tarred.explain(e);
}
