import crypto from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/**
 * age v1 (age-encryption.org/v1, c2sp.org/age) on node:crypto: X25519 and
 * scrypt recipients, the STREAM payload in 64 KiB ChaCha20-Poly1305 chunks.
 * Files it writes decrypt with `age -d`; files `age` writes decrypt here.
 * An identity is only ever held in memory, for one operation.
 */

export type AgeErrorCode = "KEY_REQUIRED" | "KEY_MISMATCH" | "KEY_INVALID" | "ARCHIVE_TAMPERED" | "AGE_UNSUPPORTED";

export class AgeError extends Error {
  constructor(
    readonly code: AgeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const VERSION_LINE = "age-encryption.org/v1";
export const AGE_MAGIC = Buffer.from("age-encryption.org/");
const CHUNK = 64 * 1024;
const TAG = 16;
const FILE_KEY_BYTES = 16;
const X25519_INFO = "age-encryption.org/v1/X25519";
const SCRYPT_LABEL = "age-encryption.org/v1/scrypt";
/** age's own default for new files; the most we accept when reading (2^22 is 4 GiB of scrypt memory). */
export const SCRYPT_LOG_N = 18;
const SCRYPT_MAX_LOG_N = 22;

// ---------------------------------------------------------------- bech32 --

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i];
  }
  return chk;
}

const hrpExpand = (hrp: string) => [...[...hrp].map((c) => c.charCodeAt(0) >>> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)];

function convertBits(data: Uint8Array | number[], from: number, to: number, pad: boolean): number[] | null {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const max = (1 << to) - 1;
  for (const v of data) {
    if (v < 0 || v >> from) return null;
    acc = (acc << from) | v;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & max);
    }
  }
  if (pad) {
    if (bits) out.push((acc << (to - bits)) & max);
  } else if (bits >= from || (acc << (to - bits)) & max) return null;
  return out;
}

function bech32Encode(hrp: string, data: Buffer): string {
  const words = convertBits(data, 8, 5, true)!;
  const chk = polymod([...hrpExpand(hrp), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = Array.from({ length: 6 }, (_, i) => (chk >>> (5 * (5 - i))) & 31);
  return hrp + "1" + [...words, ...checksum].map((w) => CHARSET[w]).join("");
}

function bech32Decode(s: string): { hrp: string; data: Buffer } | null {
  if (s !== s.toLowerCase() && s !== s.toUpperCase()) return null;
  const lower = s.toLowerCase();
  const sep = lower.lastIndexOf("1");
  if (sep < 1 || sep + 7 > lower.length) return null;
  const hrp = lower.slice(0, sep);
  const words: number[] = [];
  for (const c of lower.slice(sep + 1)) {
    const w = CHARSET.indexOf(c);
    if (w < 0) return null;
    words.push(w);
  }
  if (polymod([...hrpExpand(hrp), ...words]) !== 1) return null;
  const bytes = convertBits(words.slice(0, -6), 5, 8, false);
  return bytes ? { hrp, data: Buffer.from(bytes) } : null;
}

// ------------------------------------------------------------------ keys --

// X25519 keys go through DER, the one encoding every Node line imports the same way:
// a raw key is the last 32 bytes of a fixed PKCS#8 (private) or SPKI (public) wrapper
// (RFC 8410). A JWK needs the public part beside the secret, and Node 24.22 refuses one without it.
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

export function x25519PrivateKey(secret: Buffer): crypto.KeyObject {
  if (secret.length !== 32) throw new AgeError("KEY_INVALID", "An X25519 identity is 32 bytes.");
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, secret]), format: "der", type: "pkcs8" });
}

export function x25519PublicKey(publicKey: Buffer): crypto.KeyObject {
  if (publicKey.length !== 32) throw new AgeError("KEY_INVALID", "An X25519 recipient is 32 bytes.");
  return crypto.createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, publicKey]), format: "der", type: "spki" });
}

/** The raw 32 bytes of an X25519 public key object. */
function rawPublic(key: crypto.KeyObject): Buffer {
  const der = key.export({ format: "der", type: "spki" });
  if (der.length !== SPKI_X25519_PREFIX.length + 32 || !der.subarray(0, SPKI_X25519_PREFIX.length).equals(SPKI_X25519_PREFIX)) {
    throw new AgeError("KEY_INVALID", "Unexpected X25519 public key encoding.");
  }
  return der.subarray(SPKI_X25519_PREFIX.length);
}

export function x25519PublicOf(secret: Buffer): Buffer {
  return rawPublic(crypto.createPublicKey(x25519PrivateKey(secret)));
}

/** The X25519 shared secret; a share OpenSSL refuses (low order, the identity point) is a damaged header. */
function x25519(secret: Buffer, publicKey: Buffer): Buffer {
  const privateKey = x25519PrivateKey(secret);
  const pub = x25519PublicKey(publicKey);
  try {
    return crypto.diffieHellman({ privateKey, publicKey: pub });
  } catch (err) {
    throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged (an invalid X25519 share).", { cause: err });
  }
}

export interface GeneratedKey {
  /** AGE-SECRET-KEY-1…: shown once, never stored by Coffer. */
  identity: string;
  /** age1…: what backups are encrypted for. */
  recipient: string;
}

export function generateKey(): GeneratedKey {
  const secret = crypto.randomBytes(32);
  return { identity: bech32Encode("age-secret-key-", secret).toUpperCase(), recipient: bech32Encode("age", x25519PublicOf(secret)) };
}

/** The 32-byte public key of an `age1…` recipient, or null if it is not one. */
export function parseRecipient(s: string): Buffer | null {
  const d = bech32Decode(s.trim());
  return d && d.hrp === "age" && d.data.length === 32 ? d.data : null;
}

/** The recipient of an identity (to show which key a kit holds). */
export function recipientOf(identity: Buffer): string {
  return bech32Encode("age", x25519PublicOf(identity));
}

/**
 * The X25519 identities in an identity file's text (as age-keygen writes it:
 * comment lines, then AGE-SECRET-KEY-1… lines) or a pasted key. Lines of
 * other identity types (AGE-PLUGIN-…, the post-quantum AGE-SECRET-KEY-PQ-1…)
 * are skipped, as age skips what it cannot use; the file is refused only when
 * a line is no identity at all, or when no X25519 identity remains.
 */
export function parseIdentities(text: string): Buffer[] {
  const keys: Buffer[] = [];
  let otherTypes = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const d = bech32Decode(line);
    if (d?.hrp === "age-secret-key-" && d.data.length === 32) {
      keys.push(d.data);
      continue;
    }
    if (!line.toUpperCase().startsWith("AGE-SECRET-KEY-1") && OTHER_IDENTITY_RE.test(line)) {
      otherTypes++;
      continue;
    }
    throw new AgeError("KEY_INVALID", "That is not an age identity: expected a line starting AGE-SECRET-KEY-1 (as in the recovery kit or a file from age-keygen).");
  }
  if (keys.length === 0) {
    throw new AgeError(
      "KEY_INVALID",
      otherTypes
        ? "No identity Coffer can use: Coffer opens backups with X25519 keys (AGE-SECRET-KEY-1…), not plugin or post-quantum identities."
        : "No age identity found: paste the line starting AGE-SECRET-KEY-1 from the recovery kit.",
    );
  }
  return keys;
}

/** An identity of a type Coffer does not implement: Bech32 with an AGE-…- prefix, upper case as age writes it. */
const OTHER_IDENTITY_RE = /^AGE-[A-Z0-9-]+-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{6,}$/;

// ---------------------------------------------------------------- header --

const b64 = (b: Buffer) => b.toString("base64").replace(/=+$/, "");

function unb64(s: string, bytes?: number): Buffer {
  if (!/^[A-Za-z0-9+/]*$/.test(s)) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged (bad base64).");
  const b = Buffer.from(s, "base64");
  // Canonical encodings only: re-encoding must give the same text.
  if (b64(b) !== s || (bytes !== undefined && b.length !== bytes)) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged.");
  return b;
}

const hkdf = (ikm: Buffer, salt: Buffer, info: string) => Buffer.from(crypto.hkdfSync("sha256", ikm, salt, info, 32));

function aead(key: Buffer, nonce: Buffer, data: Buffer, open: boolean): Buffer | null {
  if (open) {
    if (data.length < TAG) return null;
    const d = crypto.createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG });
    d.setAuthTag(data.subarray(data.length - TAG));
    try {
      return Buffer.concat([d.update(data.subarray(0, data.length - TAG)), d.final()]);
    } catch {
      return null;
    }
  }
  const c = crypto.createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG });
  return Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
}

const ZERO_NONCE = Buffer.alloc(12);

interface Stanza {
  args: string[];
  body: Buffer;
}

function stanzaText(s: Stanza): string {
  const body = b64(s.body);
  const lines: string[] = [];
  for (let i = 0; i < body.length; i += 64) lines.push(body.slice(i, i + 64));
  if (body.length % 64 === 0) lines.push(""); // the body ends with a line shorter than 64 columns
  return `-> ${s.args.join(" ")}\n${lines.join("\n")}\n`;
}

function scryptKey(passphrase: string, salt: Buffer, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) =>
    crypto.scrypt(Buffer.from(passphrase, "utf8"), Buffer.concat([Buffer.from(SCRYPT_LABEL), salt]), 32, { N, r: 8, p: 1, maxmem: 130 * N * 8 + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export type AgeEncryptTo = { recipients: string[] } | { passphrase: string; logN?: number };

async function buildHeader(fileKey: Buffer, to: AgeEncryptTo): Promise<Buffer> {
  const stanzas: Stanza[] = [];
  if ("recipients" in to) {
    if (to.recipients.length === 0) throw new Error("no recipients to encrypt for");
    for (const r of to.recipients) {
      const pub = parseRecipient(r);
      if (!pub) throw new AgeError("KEY_INVALID", `${r} is not an age recipient (age1…).`);
      const eph = crypto.randomBytes(32);
      const share = x25519PublicOf(eph);
      const wrapKey = hkdf(x25519(eph, pub), Buffer.concat([share, pub]), X25519_INFO);
      stanzas.push({ args: ["X25519", b64(share)], body: aead(wrapKey, ZERO_NONCE, fileKey, false)! });
    }
  } else {
    const salt = crypto.randomBytes(16);
    const logN = to.logN ?? SCRYPT_LOG_N;
    const wrapKey = await scryptKey(to.passphrase, salt, logN);
    stanzas.push({ args: ["scrypt", b64(salt), String(logN)], body: aead(wrapKey, ZERO_NONCE, fileKey, false)! });
  }
  const head = `${VERSION_LINE}\n${stanzas.map(stanzaText).join("")}---`;
  const mac = crypto.createHmac("sha256", hkdf(fileKey, Buffer.alloc(0), "header")).update(head).digest();
  return Buffer.from(`${head} ${b64(mac)}\n`);
}

export interface ParsedHeader {
  stanzas: Stanza[];
  /** The header text up to and including "---", which the MAC covers. */
  macked: Buffer;
  mac: Buffer;
  /** Bytes the header takes, including the MAC line. */
  length: number;
}

const MAX_HEADER = 64 * 1024;

/** Parse an age header at the start of `buf`; null if more bytes are needed. */
export function parseHeader(buf: Buffer): ParsedHeader | null {
  const lines: string[] = [];
  let at = 0;
  const nextLine = (): string | null => {
    const nl = buf.indexOf(0x0a, at);
    if (nl < 0) {
      if (buf.length > MAX_HEADER) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged (too long).");
      return null;
    }
    const line = buf.toString("latin1", at, nl);
    at = nl + 1;
    lines.push(line);
    return line;
  };
  const version = nextLine();
  if (version === null) return null;
  if (version !== VERSION_LINE) {
    if (version.startsWith("age-encryption.org/")) throw new AgeError("AGE_UNSUPPORTED", `This file is encrypted with an age version Coffer does not read (${version}).`);
    throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged.");
  }
  const stanzas: Stanza[] = [];
  for (;;) {
    const line = nextLine();
    if (line === null) return null;
    if (line.startsWith("--- ")) {
      const macStart = at - line.length - 1;
      return { stanzas, macked: buf.subarray(0, macStart + 3), mac: unb64(line.slice(4), 32), length: at };
    }
    if (!line.startsWith("-> ")) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged.");
    const args = line.slice(3).split(" ");
    if (args.some((a) => !a || /[^\x21-\x7e]/.test(a))) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged.");
    let body = "";
    for (;;) {
      const bl = nextLine();
      if (bl === null) return null;
      if (bl.length > 64) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged.");
      body += bl;
      if (bl.length < 64) break;
    }
    stanzas.push({ args, body: unb64(body) });
  }
}

export interface AgeKeys {
  identities?: Buffer[];
  passphrase?: string;
}

/** What a header was encrypted with, for people (no key needed). */
export function headerKind(h: ParsedHeader): "recipients" | "passphrase" {
  return h.stanzas.some((s) => s.args[0] === "scrypt") ? "passphrase" : "recipients";
}

async function unwrapFileKey(h: ParsedHeader, keys: AgeKeys): Promise<Buffer> {
  const scrypt = h.stanzas.filter((s) => s.args[0] === "scrypt");
  if (scrypt.length && h.stanzas.length !== 1) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged (a passphrase stanza must be alone).");
  if (scrypt.length) {
    if (keys.passphrase === undefined) {
      throw new AgeError(keys.identities?.length ? "KEY_MISMATCH" : "KEY_REQUIRED", "This backup is encrypted with a passphrase: enter it to restore.");
    }
    const [, salt, logN] = scrypt[0].args;
    if (scrypt[0].args.length !== 3 || !/^[1-9][0-9]*$/.test(logN) || scrypt[0].body.length !== 32) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged.");
    if (Number(logN) > SCRYPT_MAX_LOG_N) throw new AgeError("AGE_UNSUPPORTED", `This backup's passphrase work factor (2^${logN}) is larger than Coffer accepts (2^${SCRYPT_MAX_LOG_N}).`);
    const key = aead(await scryptKey(keys.passphrase, unb64(salt, 16), Number(logN)), ZERO_NONCE, scrypt[0].body, true);
    if (!key) throw new AgeError("KEY_MISMATCH", "That passphrase does not open this backup.");
    return key;
  }
  if (!keys.identities?.length) {
    throw new AgeError("KEY_REQUIRED", keys.passphrase !== undefined ? "This backup is encrypted for an age key, not a passphrase: give its identity (AGE-SECRET-KEY-1…)." : "This backup is encrypted: give its age identity (AGE-SECRET-KEY-1…, from the recovery kit) to restore it.");
  }
  for (const s of h.stanzas) {
    if (s.args[0] !== "X25519") continue;
    if (s.args.length !== 2 || s.body.length !== 32) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged.");
    const share = unb64(s.args[1], 32);
    for (const id of keys.identities) {
      const shared = x25519(id, share);
      if (shared.every((b) => b === 0)) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is damaged.");
      const wrapKey = hkdf(shared, Buffer.concat([share, x25519PublicOf(id)]), X25519_INFO);
      const fileKey = aead(wrapKey, ZERO_NONCE, s.body, true);
      if (fileKey) return fileKey;
    }
  }
  throw new AgeError("KEY_MISMATCH", "This key does not open this backup: it is not one of the keys the backup was encrypted for (or the backup's header is damaged).");
}

function chunkNonce(counter: bigint, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  let c = counter;
  for (let i = 10; i >= 0 && c > 0n; i--) {
    n[i] = Number(c & 0xffn);
    c >>= 8n;
  }
  n[11] = last ? 1 : 0;
  return n;
}

// ---------------------------------------------------------------- streams --

/** A Transform that encrypts what passes through into an age file; `encryptedSize` says how long the file will be for a given plaintext length. */
export async function createEncryptStream(to: AgeEncryptTo): Promise<Transform & { encryptedSize: (plainBytes: number) => number }> {
  const fileKey = crypto.randomBytes(FILE_KEY_BYTES);
  const header = await buildHeader(fileKey, to);
  const nonce = crypto.randomBytes(16);
  const key = hkdf(fileKey, nonce, "payload");
  let counter = 0n;
  let pending: Buffer = Buffer.alloc(0);
  let started = false;
  const start = (t: Transform) => {
    if (started) return;
    started = true;
    t.push(Buffer.concat([header, nonce]));
  };
  const stream = new Transform({
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      start(this);
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      // Keep the last chunk back: only the end of the stream says it is the final one.
      while (pending.length > CHUNK) {
        this.push(aead(key, chunkNonce(counter++, false), pending.subarray(0, CHUNK), false));
        pending = pending.subarray(CHUNK);
      }
      cb();
    },
    flush(cb: TransformCallback) {
      start(this);
      this.push(aead(key, chunkNonce(counter++, true), pending, false));
      cb();
    },
  });
  // Header, payload nonce, then every 64 KiB chunk with its tag (an empty plaintext is one empty chunk).
  const encryptedSize = (plain: number) => header.length + nonce.length + plain + TAG * Math.max(1, Math.ceil(plain / CHUNK));
  return Object.assign(stream, { encryptedSize });
}

/** The payload key of an age file whose header (with the payload nonce after it) is at the start of `buf`, its MAC checked; null if more bytes are needed. */
async function unlockPayload(buf: Buffer, keys: AgeKeys): Promise<{ key: Buffer; payloadStart: number } | null> {
  const h = parseHeader(buf);
  if (!h || buf.length < h.length + 16) return null;
  const fileKey = await unwrapFileKey(h, keys);
  const mac = crypto.createHmac("sha256", hkdf(fileKey, Buffer.alloc(0), "header")).update(h.macked).digest();
  if (!crypto.timingSafeEqual(mac, h.mac)) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header was altered (its MAC does not match).");
  return { key: hkdf(fileKey, buf.subarray(h.length, h.length + 16), "payload"), payloadStart: h.length + 16 };
}

/** Plaintext bytes per payload chunk, and what each takes in the file (with its tag). */
export const AGE_CHUNK_BYTES = CHUNK;
export const AGE_SEALED_CHUNK_BYTES = CHUNK + TAG;

/**
 * The payload key of an age file from its first bytes (`head`: the header and payload nonce,
 * at most 64 KiB and some), for reading chunks from the middle of the file
 * (createChunkRunDecryptStream); `payloadStart` is where chunk 0 starts in the file.
 */
export async function openAgePayload(head: Buffer, keys: AgeKeys): Promise<{ payloadKey: Buffer; payloadStart: number }> {
  const opened = await unlockPayload(head, keys);
  if (!opened) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is incomplete.");
  return { payloadKey: opened.key, payloadStart: opened.payloadStart };
}

/**
 * The chunk-by-chunk decryption both streams below share. `bounded`: the
 * input is a run of whole chunks cut from the middle of a file, which may
 * end at any chunk boundary without the final chunk.
 */
function chunkDecryptor(key0: Buffer | null, keys: AgeKeys, firstChunk: bigint, bounded: boolean): Transform & { finished: () => boolean } {
  let buf: Buffer = Buffer.alloc(0);
  let key = key0;
  let counter = firstChunk;
  let sawLast = false;
  const open = (data: Buffer, last: boolean): Buffer | null => {
    const plain = aead(key!, chunkNonce(counter, last), data, true);
    if (plain) counter++;
    return plain;
  };
  const damaged = () => new AgeError("ARCHIVE_TAMPERED", "The encrypted backup is damaged or was altered: a part of it does not authenticate.");
  /**
   * A full-size chunk is tried as a middle chunk, then as the final one (as
   * age does): its plaintext is passed on once it authenticates, and what
   * its position makes wrong (a final chunk with data after it, a file that
   * ends without one) is an error right after, so the released bytes are
   * exactly those age releases and a caller that commits only at the end
   * commits nothing.
   */
  const fullChunk = (push: (b: Buffer) => void, data: Buffer, atEnd: boolean) => {
    const middle = open(data, false);
    if (middle) {
      push(middle);
      if (atEnd && !bounded) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup is truncated: its final part is missing.");
      return;
    }
    const final = open(data, true);
    if (!final) throw damaged();
    push(final);
    sawLast = true;
    if (!atEnd) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup has data after its final part.");
  };
  const t = new Transform({
    async transform(chunk: Buffer, _e, cb: TransformCallback) {
      try {
        if (sawLast) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup has data after its final part.");
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        if (!key) {
          const opened = await unlockPayload(buf, keys);
          if (!opened) return cb();
          key = opened.key;
          buf = buf.subarray(opened.payloadStart);
        }
        // A full chunk is decrypted once a byte after it has arrived, so it is known not to end the file.
        while (buf.length > CHUNK + TAG) {
          const data = buf.subarray(0, CHUNK + TAG);
          buf = buf.subarray(CHUNK + TAG);
          fullChunk((b) => this.push(b), data, false);
        }
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        if (!key) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup ends inside its header: it is truncated.");
        if (bounded && buf.length === 0) return cb(); // the run stopped at a chunk boundary
        if (buf.length === 0 && counter > 0n) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup is truncated: its final part is missing.");
        if (buf.length === CHUNK + TAG) fullChunk((b) => this.push(b), buf, true);
        else {
          // A short chunk can only be the final one, and only the first chunk may be empty.
          if (counter > 0n && buf.length === TAG) throw damaged();
          const plain = open(buf, true);
          if (!plain) throw damaged();
          this.push(plain);
          sawLast = true;
        }
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  return Object.assign(t, { finished: () => sawLast });
}

/**
 * A Transform that decrypts an age file. Each chunk is authenticated before
 * its plaintext is passed on; a stream that ends without a valid final chunk
 * (truncated) or with a chunk that does not authenticate (a flipped bit)
 * fails with ARCHIVE_TAMPERED, so a caller that commits only after the end
 * never commits unauthenticated data.
 */
export function createDecryptStream(keys: AgeKeys): Transform & { finished: () => boolean } {
  return chunkDecryptor(null, keys, 0n, false);
}

/**
 * A Transform that decrypts a run of whole chunks read from the middle of an
 * age file, the first being chunk `firstChunk` (its file offset:
 * payloadStart + firstChunk * AGE_SEALED_CHUNK_BYTES). Every byte it passes on
 * authenticated as that chunk of that file (the counter is in the nonce), so
 * bytes from another place or another file fail; the run may end at any chunk
 * boundary, and the caller checks it got as much as it needed.
 */
export function createChunkRunDecryptStream(payloadKey: Buffer, firstChunk: number): Transform {
  if (!Number.isSafeInteger(firstChunk) || firstChunk < 0) throw new Error("a chunk number is a non-negative integer");
  return chunkDecryptor(payloadKey, {}, BigInt(firstChunk), true);
}

/** Does this data start like an age file? */
export const looksLikeAge = (head: Buffer) => head.subarray(0, AGE_MAGIC.length).equals(AGE_MAGIC);

/**
 * What can be checked of an age file without a key: a well-formed header,
 * and a payload whose length is whole chunks ending in a non-empty final
 * one. `head` holds at least the header; `size` is the whole file's.
 */
export function checkFraming(head: Buffer, size: number): { kind: "recipients" | "passphrase"; stanzas: number; chunks: number } {
  const h = parseHeader(head);
  if (!h) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's header is incomplete.");
  const payload = size - h.length - 16;
  const full = Math.floor(payload / (CHUNK + TAG));
  const last = payload - full * (CHUNK + TAG);
  const ok = payload >= TAG && (last === 0 ? full > 0 : last >= TAG && !(last === TAG && full > 0));
  if (!ok) throw new AgeError("ARCHIVE_TAMPERED", "The encrypted backup's length does not fit its format: it is truncated or has extra data.");
  return { kind: headerKind(h), stanzas: h.stanzas.length, chunks: full + (last ? 1 : 0) };
}
