import http from "node:http";
import https from "node:https";
import { PassThrough, Readable, Transform, type Writable } from "node:stream";
import {
  S3Client,
  HeadObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { AppError, notFound, type ErrorCode } from "../../errors";
import { OBJECT_NAME_RE, streamRange, type BackupTarget, type ByteRange, type PutOptions, type TargetObject } from "../local/target";
import { joinKey, type S3Location } from "./location";
import { assertEndpointAllowed, guardedLookup } from "../../http/endpoint-guard";

/** Bodies larger than this go up as multipart uploads; smaller ones as one PUT. Also the buffer per upload. */
export const PART_BYTES = 8 * 1024 * 1024;

/** The most names one listing collects (a repository of a million blobs fits) and how long it may take. */
export const LIST_MAX_NAMES = Number(process.env.COFFER_S3_LIST_MAX_NAMES) || 2_000_000;
export const LIST_DEADLINE_MS = Number(process.env.COFFER_S3_LIST_DEADLINE_MS) || 10 * 60 * 1000;

/** How long a body may send nothing while its reader waits, before the transfer is given up (read at each open: tests and operators set it). */
export const stallMs = () => Number(process.env.COFFER_OFFSITE_STALL_MS) || 30_000;

export interface OpenOptions extends ByteRange {
  /** The size the object's index or listing declared: the body fails the moment it passes this. */
  maxBytes?: number;
  signal?: AbortSignal;
}

/** A transfer stopped because whoever asked for it (a browser, a CLI user, a job being stopped) went away. */
export function transferStopped(reason: unknown): AppError {
  if (reason instanceof AppError) return reason;
  return new AppError(400, "CLIENT_GONE", "The transfer from the storage was stopped: whoever asked for it went away.");
}

export interface ListBounds {
  maxNames?: number;
  deadlineMs?: number;
  signal?: AbortSignal;
}

// The SDK prints a notice on Node 20 that its releases after January 2027 need Node 22. The version
// is pinned in package.json, and README says which Node versions Coffer runs on.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export function s3Client(loc: S3Location, opts: { timeoutMs?: number } = {}): S3Client {
  // The SDK throws a bare TypeError for an address it cannot parse: say which field is wrong instead.
  try {
    if (!/^https?:$/.test(new URL(loc.endpoint).protocol)) throw new Error();
  } catch {
    throw new AppError(400, "OFFSITE_ENDPOINT", `${JSON.stringify(loc.endpoint)} is not an http:// or https:// address.`, { endpoint: "Use an http:// or https:// address, e.g. https://s3.example.com." });
  }
  assertEndpointAllowed(loc.endpoint);
  // Host names are checked again on what they resolve to, at every connect.
  const lookup = guardedLookup();
  const config: S3ClientConfig = {
    endpoint: loc.endpoint || undefined,
    region: loc.region || "us-east-1",
    forcePathStyle: loc.pathStyle,
    credentials: { accessKeyId: loc.accessKeyId, secretAccessKey: loc.secretAccessKey },
    // Three tries: one 500 or a dropped connection is retried by the SDK, not reported as a failed backup.
    maxAttempts: 3,
    // Coffer reports what failed in its own words; without a logger the SDK writes its own warnings to the console.
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    // throwOnRequestTimeout: without it the SDK only logs a warning and waits on a silent server forever.
    requestHandler: {
      connectionTimeout: opts.timeoutMs ?? 10_000,
      requestTimeout: opts.timeoutMs ?? 60_000,
      throwOnRequestTimeout: true,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 50, lookup }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 50, lookup }),
    },
  };
  if (loc.checksumCompat) {
    config.requestChecksumCalculation = "WHEN_REQUIRED";
    config.responseChecksumValidation = "WHEN_REQUIRED";
  }
  return new S3Client(config);
}


interface S3ErrorLike {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/** The HTTP status an S3 error came with, if any. */
export const s3Status = (err: unknown): number | undefined => (err as S3ErrorLike)?.$metadata?.httpStatusCode;

export function isNotFound(err: unknown): boolean {
  const e = err as S3ErrorLike;
  return s3Status(err) === 404 || e?.name === "NoSuchKey" || e?.name === "NotFound";
}

/**
 * What went wrong talking to the store, as one sentence that names the
 * failing part (DNS, connection, TLS, credentials, bucket, permission), so a
 * person knows which field of the form to look at.
 */
export function explainS3Error(err: unknown, loc: Pick<S3Location, "endpoint" | "bucket">): AppError {
  if (err instanceof AppError) return err;
  const e = (err ?? {}) as S3ErrorLike;
  const code = e.code ?? (e.cause as S3ErrorLike | undefined)?.code ?? "";
  const name = e.name ?? "";
  const status = s3Status(err);
  let host = loc.endpoint;
  try {
    host = new URL(loc.endpoint).host;
  } catch {
    /* shown as typed */
  }
  const fail = (c: ErrorCode, m: string) => new AppError(502, c, m, undefined, { cause: err });
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return fail("OFFSITE_DNS", `The endpoint's host name ${host} could not be found (DNS). Check the endpoint address.`);
  if (code === "ECONNREFUSED") return fail("OFFSITE_UNREACHABLE", `Nothing answered at ${host} (connection refused). Check the endpoint address and port.`);
  if (code === "ECONNRESET" || code === "EPIPE") return fail("OFFSITE_UNREACHABLE", `The connection to ${host} was cut while talking to it.`);
  if (name === "TimeoutError" || code === "ETIMEDOUT" || name === "RequestTimeout" || /timed? ?out/i.test(e.message ?? "")) {
    return fail("OFFSITE_TIMEOUT", `${host} did not answer in time. Check the endpoint address, or whether the storage is up.`);
  }
  if (/CERT|SSL|TLS|EPROTO|self[- ]signed/i.test(code) || /certificate|SSL routines|wrong version number/i.test(e.message ?? "")) {
    return fail("OFFSITE_TLS", `A secure (TLS) connection to ${host} could not be made: ${e.message}. Use http:// for a store without TLS, or fix its certificate.`);
  }
  if (name === "InvalidAccessKeyId") return fail("OFFSITE_CREDENTIALS", "The storage does not know this access key ID.");
  if (name === "SignatureDoesNotMatch") return fail("OFFSITE_CREDENTIALS", "The storage rejected the secret access key (the signature did not match).");
  if (name === "NoSuchBucket") return fail("OFFSITE_NO_BUCKET", `The bucket ${loc.bucket} does not exist at ${host}. Create it first (Coffer does not create buckets).`);
  if (name === "AccessDenied" || status === 403) return fail("OFFSITE_DENIED", `The storage refused this operation on bucket ${loc.bucket} (access denied). The key needs permission to list, read, write and delete objects there.`);
  if (name === "PermanentRedirect" || status === 301) return fail("OFFSITE_REGION", `The bucket ${loc.bucket} lives in another region or needs another endpoint.`);
  if (status !== undefined && status >= 300 && status < 400) {
    return fail("OFFSITE_REDIRECT", `${host} answered with a redirect (HTTP ${status}); Coffer does not follow a store elsewhere. Check the endpoint address (https://, or the bucket's own regional endpoint).`);
  }
  const what = [name, status ? `HTTP ${status}` : "", code].filter(Boolean).join(", ");
  return fail("OFFSITE_FAILED", `The storage at ${host} failed: ${e.message || what || String(err)}${what && e.message ? ` (${what})` : ""}.`);
}

/**
 * A BackupTarget over a key prefix in an S3 bucket. A PUT, or the completion
 * of a multipart upload, is atomic: an object is visible only when whole. A
 * writer that dies mid-way leaves at most an unfinished multipart upload,
 * which list() never shows and sweepPartials() aborts where the store
 * supports listing them.
 */
export class S3Target implements BackupTarget {
  readonly kind = "s3";
  constructor(
    readonly client: S3Client,
    readonly loc: S3Location,
    /** The key prefix under the repository's prefix ("snapshots", "blobs"). */
    readonly sub: string,
    private readonly nameRe: RegExp = OBJECT_NAME_RE,
  ) {}

  get location(): string {
    return `s3://${joinKey(this.loc.bucket, this.loc.prefix, this.sub)}/`;
  }

  private get keyPrefix(): string {
    const p = joinKey(this.loc.prefix, this.sub);
    return p ? `${p}/` : "";
  }

  key(name: string): string {
    if (!this.nameRe.test(name)) throw notFound("That backup");
    return this.keyPrefix + name;
  }

  private wrap(err: unknown): AppError {
    return explainS3Error(err, this.loc);
  }

  async put(name: string, write: (out: Writable) => Promise<unknown>, opts: PutOptions = {}): Promise<TargetObject> {
    const key = this.key(name);
    if (await this.stat(name)) throw new AppError(409, "EXISTS", `${name} already exists in ${this.location}; objects are never replaced.`);
    // beforeCommit runs in the body's flush: an upload never sees the end of a body it must abandon, so it never completes.
    const body = new Transform({
      transform(chunk, _e, cb) {
        cb(null, chunk);
      },
      flush(cb) {
        try {
          opts.beforeCommit?.();
          cb();
        } catch (err) {
          cb(err as Error);
        }
      },
    });
    const input = new PassThrough({ highWaterMark: 1024 * 1024 });
    input.pipe(body);
    input.on("error", (err) => body.destroy(err));
    const upload = new Upload({
      client: this.client,
      // IfNoneMatch: stores that support conditional writes refuse to replace an object that appeared meanwhile.
      params: { Bucket: this.loc.bucket, Key: key, Body: body, IfNoneMatch: "*" },
      partSize: PART_BYTES,
      queueSize: 1,
      leavePartsOnError: false,
    });
    const uploading = upload.done();
    uploading.catch(() => {});
    let writerError: unknown = null;
    try {
      await write(input);
    } catch (err) {
      writerError = err;
      body.destroy(err as Error);
      await upload.abort().catch(() => {});
    }
    try {
      await uploading;
    } catch (err) {
      // The writer's own failure is what happened; the upload only stopped because of it.
      throw writerError ?? (body.errored ? body.errored : this.wrap(err));
    }
    if (writerError) throw writerError;
    const st = await this.stat(name);
    if (!st) throw new AppError(502, "OFFSITE_FAILED", `${name} was uploaded but ${this.location} does not list it.`);
    return st;
  }

  /**
   * Every object under the prefix. A bucket is untrusted: a listing that never ends (IsTruncated
   * forever, a token that repeats) stops at `maxNames` names or `deadlineMs`, with OFFSITE_LIST_TOO_LONG.
   */
  async list(opts: ListBounds = {}): Promise<TargetObject[]> {
    const maxNames = opts.maxNames ?? LIST_MAX_NAMES;
    const maxPages = Math.ceil(maxNames / 1000) + 10;
    const deadline = Date.now() + (opts.deadlineMs ?? LIST_DEADLINE_MS);
    const tooLong = (why: string) =>
      new AppError(502, "OFFSITE_LIST_TOO_LONG", `Listing ${this.location} was stopped: ${why}. The bucket answers more than a Coffer repository holds; check the endpoint, bucket and prefix.`);
    const out: TargetObject[] = [];
    const seen = new Set<string>();
    let token: string | undefined;
    let pages = 0;
    try {
      do {
        opts.signal?.throwIfAborted();
        if (++pages > maxPages) throw tooLong(`more than ${maxPages} pages`);
        if (Date.now() > deadline) throw tooLong(`it took longer than ${Math.round((opts.deadlineMs ?? LIST_DEADLINE_MS) / 1000)} s`);
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.loc.bucket, Prefix: this.keyPrefix, ContinuationToken: token }), { abortSignal: opts.signal });
        for (const o of page.Contents ?? []) {
          const name = (o.Key ?? "").slice(this.keyPrefix.length);
          if (!this.nameRe.test(name)) continue;
          if (out.length >= maxNames) throw tooLong(`more than ${maxNames} names`);
          const size = Number(o.Size ?? 0);
          // A size no store gives (negative, fractional, NaN) would become a cap that caps nothing: not an object Coffer wrote.
          if (!Number.isSafeInteger(size) || size < 0) continue;
          out.push({ name, size, modifiedAt: (o.LastModified ?? new Date(0)).toISOString() });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
        if (page.IsTruncated && !token) throw tooLong("a page said there is more but gave no continuation token");
        if (token) {
          if (seen.has(token)) throw tooLong("a continuation token came back twice");
          seen.add(token);
        }
      } while (token);
    } catch (err) {
      if (opts.signal?.aborted) throw transferStopped(opts.signal.reason);
      if (err instanceof AppError) throw err;
      throw this.wrap(err);
    }
    return out;
  }

  async stat(name: string): Promise<TargetObject | null> {
    if (!this.nameRe.test(name)) return null;
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: this.key(name) }));
      return { name, size: h.ContentLength ?? 0, modifiedAt: (h.LastModified ?? new Date(0)).toISOString() };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.wrap(err);
    }
  }

  /**
   * An object's body, bounded (a bucket is untrusted): it fails with
   * OFFSITE_OVERSIZE the moment it passes `maxBytes`, before those bytes are
   * handed on; with OFFSITE_STALLED when no byte came for stallMs() while its
   * reader was ready for more; and with CLIENT_GONE when `signal` fires.
   * A range is one ranged GET (a store that answers with other bytes is refused).
   */
  async open(name: string, opts: OpenOptions = {}): Promise<Readable> {
    const key = this.key(name);
    const span = streamRange(opts);
    if (span === "empty") return Readable.from([]);
    const ranged = span.start !== 0 || span.end !== undefined;
    const range = ranged ? `bytes=${span.start}-${span.end ?? ""}` : undefined;
    // A cap that is not a byte count (NaN from a bucket's listing) caps at nothing rather than at everything.
    const maxBytes = opts.maxBytes === undefined ? Number.MAX_SAFE_INTEGER : Number.isSafeInteger(opts.maxBytes) && opts.maxBytes >= 0 ? opts.maxBytes : 0;
    const where = `${this.location}${name}`;
    const tooLarge = () =>
      new AppError(422, "OFFSITE_OVERSIZE", `The object ${where} is larger than the ${maxBytes} bytes its index declares; Coffer stopped reading it. The repository is damaged or was altered.`);
    const stall = stallMs();
    const stalled = () => new AppError(504, "OFFSITE_STALLED", `The storage stopped sending ${where} (nothing for ${Math.round(stall / 1000)} s), so the transfer was given up.`);
    if (opts.signal?.aborted) throw transferStopped(opts.signal.reason);
    const ctl = new AbortController();
    const onCallerAbort = () => ctl.abort(transferStopped(opts.signal?.reason));
    opts.signal?.addEventListener("abort", onCallerAbort, { once: true });
    let out: Transform | null = null;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        // A reader that is busy (its buffers full) is not a stalled store.
        if (out && (out.readableLength >= out.readableHighWaterMark || out.writableLength > 0)) return arm();
        ctl.abort(stalled());
      }, stall);
      timer.unref?.();
    };
    const settle = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onCallerAbort);
    };
    arm();
    let body: Readable;
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: key, Range: range }), { abortSignal: ctl.signal });
      body = r.Body as Readable;
      if (ranged && !r.ContentRange?.startsWith(`bytes ${span.start}-`)) {
        body.destroy();
        throw new AppError(502, "OFFSITE_FAILED", `The storage answered a request for part of ${where} with other bytes (${r.ContentRange ?? "the whole object"}); it does not serve byte ranges.`);
      }
      if (r.ContentLength !== undefined && r.ContentLength > maxBytes) {
        body.destroy();
        throw tooLarge();
      }
    } catch (err) {
      settle();
      if (ctl.signal.aborted) throw ctl.signal.reason;
      if (err instanceof AppError) throw err;
      if (isNotFound(err) && (err as S3ErrorLike).name !== "NoSuchBucket") throw notFound(`${name} in ${this.location}`);
      // A range that starts at or past the end: nothing there, as a file read gives.
      if (ranged && ((err as S3ErrorLike).name === "InvalidRange" || s3Status(err) === 416)) return Readable.from([]);
      throw this.wrap(err);
    }
    let seen = 0;
    const bounded = new Transform({
      transform(chunk: Buffer, _e, cb) {
        arm();
        seen += chunk.length;
        if (seen > maxBytes) return cb(tooLarge());
        cb(null, chunk);
      },
    });
    out = bounded;
    const onAbort = () => {
      body.destroy();
      bounded.destroy(ctl.signal.reason as Error);
    };
    ctl.signal.addEventListener("abort", onAbort, { once: true });
    body.on("error", (err) => bounded.destroy(ctl.signal.aborted ? (ctl.signal.reason as Error) : this.wrap(err)));
    // Once the store has sent everything, a slow reader is no stall.
    body.once("end", () => clearTimeout(timer));
    bounded.on("close", () => {
      settle();
      ctl.signal.removeEventListener("abort", onAbort);
      body.destroy();
    });
    body.pipe(bounded);
    return bounded;
  }

  /** The repository keeps no sidecars (its snapshots hold no documents to seek to). */
  async openSidecar(_name: string): Promise<Readable | null> {
    return null;
  }

  /** A small object (a marker, an index) whole, at most `maxBytes`, or null when there is none. */
  async readSmall(name: string, maxBytes: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer | null> {
    let body: Readable;
    try {
      body = await this.open(name, { maxBytes, signal: opts.signal });
    } catch (err) {
      if (err instanceof AppError && err.status === 404 && err.code === "NOT_FOUND") return null;
      throw err;
    }
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** One PUT of a small object held in memory (a marker, an index, a probe); replaces what is there. */
  async putSmall(name: string, data: Buffer, contentType = "application/json"): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.key(name), Body: data, ContentLength: data.length, ContentType: contentType }));
    } catch (err) {
      throw this.wrap(err);
    }
  }

  /**
   * One PUT of a stream of exactly `length` bytes (a blob), nothing buffered.
   * The SDK cannot retry a stream, so the caller retries by opening its
   * source again; the error is the SDK's, for the caller to judge (s3Status).
   */
  async putStream(name: string, body: Readable, length: number, signal?: AbortSignal): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.key(name), Body: body, ContentLength: length }), { abortSignal: signal });
  }

  /** Delete without looking first (S3 deletes are idempotent), unlike remove(). */
  async delete(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key: this.key(name) }));
    } catch (err) {
      throw this.wrap(err);
    }
  }

  async remove(name: string): Promise<void> {
    // S3 deletes are idempotent; the contract says removing what is not there is a 404.
    if (!(await this.stat(name))) throw notFound(`${name} in ${this.location}`);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key: this.key(name) }));
    } catch (err) {
      throw this.wrap(err);
    }
  }

  /**
   * Abort multipart uploads under this prefix that were started before
   * `olderThan` and never completed. Stores that cannot list them (s3rver
   * answers 501) are left alone: their unfinished parts are invisible and
   * never counted as backups either way.
   */
  async sweepPartials(olderThan: Date = new Date()): Promise<string[]> {
    const removed: string[] = [];
    let uploads;
    try {
      uploads = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.loc.bucket, Prefix: this.keyPrefix }));
    } catch (err) {
      const status = s3Status(err);
      if (status === 501 || status === 405 || (err as S3ErrorLike).name === "NotImplemented") return removed;
      throw this.wrap(err);
    }
    for (const u of uploads.Uploads ?? []) {
      if (!u.Key || !u.UploadId || (u.Initiated && u.Initiated >= olderThan)) continue;
      try {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.loc.bucket, Key: u.Key, UploadId: u.UploadId }));
        removed.push(u.Key.slice(this.keyPrefix.length));
      } catch {
        // Best effort: an abort the store refuses leaves parts that are still never listed as objects.
      }
    }
    return removed;
  }
}
