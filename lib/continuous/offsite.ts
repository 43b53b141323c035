import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../instance";
import { instanceId } from "../instance";
import { blobPath } from "../vault/blobs";
import { DAY_MS } from "../util/time";
import { eachLimit } from "../util/concurrency";
import { collectNow } from "../util/gc";
import { archiveEncryption } from "../backup/format/encryption";
import { describeLocation } from "../backup/offsite/location";
import { S3Target } from "../backup/offsite/s3";
import { blobNamer, claimRepository, closeRepository, openRepository, type OffsiteRepo, type RepoMarker } from "../backup/offsite/repository";
import { blobEncryption } from "../backup/offsite/push";
import { BLOB_CONCURRENCY, uploadBlob, uploadFile } from "../backup/offsite/transfer";
import { continuousPlan, GENERATION_RE, SNAPSHOT_RE, WAL_RE } from "./litestream";
import { keptBlobs } from "./kept";
import { SETTINGS_VERSIONS_DIR, VERSION_NAME_RE } from "./versions";
import { hasOffsiteState, offsiteContinuousWanted, offsiteSyncMs, readOffsiteState, writeOffsiteState, type OffsiteContinuousState } from "./offsite-state";

/**
 * Continuous protection offsite (docs/architecture.md#continuous-protection):
 * every few seconds, what the local replica gained goes to the bucket through
 * Coffer's own repository code, not Litestream's S3 replica. Why: Litestream
 * 0.3.13's S3 replica writes to s3rver but cannot list or restore from it
 * (its `snapshots` and `restore` find nothing there); it has no notion of
 * Coffer's encryption, blob names or bounded reads; and it syncs every second
 * (up to ~2.6 M PUTs a month). The file replica's finished files are
 * immutable (Litestream writes each to .tmp and renames it), so each is one
 * PUT, once.
 *
 * Under s3://bucket/prefix/continuous/:
 *   generations/<gen>/snapshots/<index>.snapshot.lz4.<mtime ms>[.age]
 *   generations/<gen>/wal/<index>_<offset>.wal.lz4.<mtime ms>[.age]
 *   settings/<UTC>-<sha256>.json[.age]       a settings version (./versions.ts)
 * The mtime is in the name because it is what `litestream restore -timestamp`
 * compares against (a bucket's LastModified is the upload's time), and a
 * restore from the bucket rebuilds the replica with it (./offsite-restore.ts).
 * Replica files are encrypted like blobs (to the recipients and the
 * repository identity); settings versions, which carry the keys, like
 * snapshots (to the recipients or the passphrase only).
 *
 * A round sends, in this order: the vault files of documents added since the
 * last round (named and encrypted as every offsite blob), then the replica
 * files listed before those documents were read. So a WAL segment in the
 * bucket never names a document file that is not there yet.
 */

export const CONTINUOUS_SUB = "continuous";

/** Every continuous object name Coffer writes; anything else in the prefix is not read. */
export const CONTINUOUS_OBJECT_RE =
  /^(?:generations\/[0-9a-f]{16}\/(?:snapshots\/[0-9a-f]{8}\.snapshot\.lz4|wal\/[0-9a-f]{8}_[0-9a-f]{8}\.wal\.lz4)\.\d{13}|settings\/\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{64}\.json)(?:\.age)?$/;

const MAX_BACKOFF_MS = 60_000;
const REQUESTS_PER_MAJOR = 300;
/** Objects the window no longer needs are deleted this often. */
const PRUNE_MS = 3600_000;

export const continuousTarget = (repo: OffsiteRepo) => new S3Target(repo.client, repo.loc, CONTINUOUS_SUB, CONTINUOUS_OBJECT_RE);

/** A file of the local replica that belongs offsite. */
export interface ReplicaFile {
  /** Its path under the replica directory, as the object name has it (without the time and .age). */
  rel: string;
  file: string;
  size: number;
  mtimeMs: number;
  kind: "snapshot" | "wal" | "settings";
}

/**
 * The finished files of the local replica: snapshots and WAL segments of each
 * generation (not Litestream's .tmp), and settings versions. A week of WAL is
 * tens of thousands of files and a round runs every few seconds: the
 * directories are read off the event loop, and only names not in `known`
 * (from the last scan: a finished file never changes) are stat'ed.
 */
export async function localReplicaFiles(replica: string, known: ReadonlyMap<string, ReplicaFile> = new Map()): Promise<ReplicaFile[]> {
  const out: ReplicaFile[] = [];
  const add = async (rel: string, kind: ReplicaFile["kind"]) => {
    const seen = known.get(rel);
    if (seen) return void out.push(seen);
    const file = path.join(replica, rel);
    const st = await fs.promises.lstat(file).catch(() => null);
    if (st?.isFile()) out.push({ rel, file, size: st.size, mtimeMs: Math.floor(st.mtimeMs), kind });
  };
  const names = async (dir: string) => (await fs.promises.readdir(path.join(replica, dir)).catch(() => [] as string[])).sort();
  for (const n of await names(SETTINGS_VERSIONS_DIR)) if (VERSION_NAME_RE.test(n)) await add(`${SETTINGS_VERSIONS_DIR}/${n}`, "settings");
  for (const g of await names("generations")) {
    if (!GENERATION_RE.test(g)) continue;
    for (const n of await names(`generations/${g}/snapshots`)) if (SNAPSHOT_RE.test(n)) await add(`generations/${g}/snapshots/${n}`, "snapshot");
    for (const n of await names(`generations/${g}/wal`)) if (WAL_RE.test(n)) await add(`generations/${g}/wal/${n}`, "wal");
  }
  return out;
}

/** The object a local file becomes. */
export function objectNameOf(f: Pick<ReplicaFile, "rel" | "mtimeMs" | "kind">, encrypted: boolean): string {
  return `${f.rel}${f.kind === "settings" ? "" : `.${String(f.mtimeMs).padStart(13, "0")}`}${encrypted ? ".age" : ""}`;
}

/**
 * The blob objects the continuous window needs in the bucket while it follows
 * the offsite location: every document's file, and those erased inside the
 * window (kept for it). Offsite retention keeps them whatever snapshot names
 * them (the window reaches points no snapshot was taken at). Empty when
 * continuous protection does not follow the bucket.
 */
export function continuousBlobObjects(inst: Instance): Set<string> {
  if (!offsiteContinuousWanted(inst)) return new Set();
  const nameOf = blobNamer(inst.secretKey, !!archiveEncryption(inst));
  const shas = new Set(inst.db.prepare("SELECT DISTINCT sha256 FROM documents").pluck().all() as string[]);
  for (const sha of keptBlobs(inst)) shas.add(sha);
  return new Set([...shas].map(nameOf));
}

/** The time in a replica object's name (settings versions: the time they took effect). */
export function objectTimeMs(name: string): number {
  const m = /\.(\d{13})(?:\.age)?$/.exec(name);
  if (m) return Number(m[1]);
  const s = /settings\/(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2}\.\d{3})Z-/.exec(name);
  return s ? Date.parse(`${s[1]}-${s[2]}-${s[3]}T${s[4]}:${s[5]}:${s[6]}Z`) : NaN;
}

interface Span {
  first: number;
  last: number;
}

function widen(span: Span, name: string): Span {
  if (name.startsWith("settings/")) return span;
  const t = objectTimeMs(name);
  return { first: name.includes("/snapshots/") ? Math.min(span.first, t) : span.first, last: Math.max(span.last, t) };
}

const spanOf = (names: Iterable<string>) => {
  let span: Span = { first: Infinity, last: -Infinity };
  for (const n of names) span = widen(span, n);
  return span;
};

interface Listed {
  key: string;
  repo: OffsiteRepo;
  target: S3Target;
  /** Continuous objects the bucket has. */
  objects: Set<string>;
  /** Blob objects the bucket has. */
  blobs: Set<string>;
  /** Documents up to this id have their files in the bucket. */
  docsAfter: number;
  /** The bucket's span (oldest snapshot, newest file), kept as objects are added; null: count it again. */
  span: Span | null;
  /** The local replica's files at the last round, by path (they never change). */
  files: Map<string, ReplicaFile>;
  /** Local replica files gone (Litestream's retention) that were sent: deleted offsite once the window has passed them. */
  prunedAt: number;
}

export interface RoundResult {
  blobs: number;
  files: number;
  bytes: number;
}

/**
 * One instance's shipping to its bucket, run by the supervisor every
 * offsiteSyncMs(). A failed round (the bucket unreachable) changes nothing
 * locally: the replica keeps every change, the next round retries with
 * backoff, and health says how far behind the bucket is.
 */
export class OffsiteShipper {
  private listed: Listed | null = null;
  private failures = 0;
  private notBefore = 0;
  private round_: Promise<RoundResult | null> | null = null;
  private abort: AbortController | null = null;
  private state: OffsiteContinuousState | null = null;
  private readonly countingSince = new Date().toISOString();
  private objectsSent = 0;
  private bytesSent = 0;

  constructor(private readonly log: (line: string) => void) {}

  /** Forget what the bucket holds (a restore installed another database; the next round lists again). */
  reset(): void {
    if (this.listed) closeRepository(this.listed.repo);
    this.listed = null;
    this.failures = 0;
    this.notBefore = 0;
  }

  /** Stop the round in progress (before a restore swaps the database, at shutdown). */
  async stop(): Promise<void> {
    this.abort?.abort(new Error("continuous protection paused"));
    await this.round_?.catch(() => {});
    this.reset();
  }

  /** Run a round unless one is running or the last failure's backoff has not passed. */
  tick(inst: Instance): Promise<RoundResult | null> {
    if (this.round_ || Date.now() < this.notBefore) return this.round_ ?? Promise.resolve(null);
    this.abort = new AbortController();
    this.round_ = this.round(inst, this.abort.signal).finally(() => {
      this.round_ = null;
      this.abort = null;
    });
    return this.round_;
  }

  private async round(inst: Instance, signal: AbortSignal): Promise<RoundResult | null> {
    const loc = offsiteContinuousWanted(inst);
    if (!loc) {
      this.reset();
      return null;
    }
    const encryption = archiveEncryption(inst);
    const mode: RepoMarker["encryption"] = encryption?.record?.mode ?? "off";
    const key = JSON.stringify([instanceId(inst), loc.endpoint, loc.bucket, loc.prefix, mode, inst.paths.db]);
    const where = describeLocation(loc);
    try {
      if (this.listed?.key !== key) {
        this.reset();
        const repo = openRepository(loc);
        try {
          await claimRepository(repo, inst, mode);
          const target = continuousTarget(repo);
          const [objects, blobs] = await Promise.all([target.list({ signal }), repo.blobs.list({ signal })]);
          this.listed = { key, repo, target, objects: new Set(objects.map((o) => o.name)), blobs: new Set(blobs.map((o) => o.name)), docsAfter: 0, prunedAt: 0, span: null, files: new Map() };
        } catch (err) {
          closeRepository(repo);
          throw err;
        }
      }
      const l = this.listed;
      const encrypted = !!encryption;
      const plan = continuousPlan(inst);
      // Listed before the documents are read: every segment sent below was written before them.
      const files = await localReplicaFiles(plan.replica, l.files);
      l.files = new Map(files.map((f) => [f.rel, f]));

      const nameOf = blobNamer(inst.secretKey, encrypted);
      const blobTo = blobEncryption(inst.secretKey, encryption?.to);
      const rows = inst.db.prepare("SELECT id, sha256 FROM documents WHERE id > ? ORDER BY id").all(l.docsAfter) as { id: number; sha256: string }[];
      const shas = new Set(rows.map((r) => r.sha256));
      // The first round also sends the files of documents erased inside the window (kept for it).
      if (l.docsAfter === 0) for (const sha of keptBlobs(inst)) shas.add(sha);
      const blobs = [...shas].filter((sha) => !l.blobs.has(nameOf(sha)));
      const unsent = files.filter((f) => !l.objects.has(objectNameOf(f, encrypted)));
      // What waits, said before sending it; a failure of the last round stands until a round succeeds.
      this.writeState(inst, where, l, blobs.length + unsent.length, this.state?.error ?? null);
      let bytes = 0;
      let sentBlobs = 0;
      // A few at a time while following (each PUT costs the event loop a little; uploads are answered meanwhile), all lanes to catch up.
      await eachLimit(blobs, blobs.length > 100 ? BLOB_CONCURRENCY : 2, async (sha) => {
        signal.throwIfAborted();
        const file = blobPath(inst.paths, sha);
        const size = (await fs.promises.stat(file).catch(() => null))?.size;
        // Erased and purged meanwhile (protection was off then): nothing of the window names it.
        if (size === undefined) return;
        const n = await uploadBlob(l.repo, nameOf(sha), file, sha, size, blobTo, signal);
        l.blobs.add(nameOf(sha));
        bytes += n;
        sentBlobs++;
        this.count(n);
      });
      if (rows.length) l.docsAfter = rows[rows.length - 1].id;

      // Settings first, then snapshots before the segments that follow them, oldest first: the bucket's window only ever grows at its end.
      const order = { settings: 0, snapshot: 1, wal: 2 } as const;
      unsent.sort((a, b) => a.mtimeMs - b.mtimeMs || order[a.kind] - order[b.kind] || a.rel.localeCompare(b.rel));
      let sentFiles = 0;
      for (const f of unsent) {
        signal.throwIfAborted();
        const name = objectNameOf(f, encrypted);
        const to = f.kind === "settings" ? encryption?.to : blobTo;
        let n: number;
        try {
          n = await uploadFile(l.target, loc, name, f.file, f.size, to, { signal });
        } catch (err) {
          // Litestream's retention removed it after the listing: it is no longer part of the window.
          if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
          throw err;
        }
        l.objects.add(name);
        if (l.span) l.span = widen(l.span, name);
        bytes += n;
        sentFiles++;
        this.count(n);
      }
      if (Date.now() - l.prunedAt >= PRUNE_MS) {
        await this.prune(inst, l, files, encrypted, signal);
        // Offsite retention (a backup job) may have deleted a blob that a later document brought back: listed again, and every document checked.
        if (l.prunedAt) {
          l.blobs = new Set((await l.repo.blobs.list({ signal })).map((o) => o.name));
          l.docsAfter = 0;
        }
        l.prunedAt = Date.now();
      }
      this.collectBetweenRounds(bytes);
      if (this.failures) this.log(`continuous protection: ${where} is reachable again; every change is there`);
      this.failures = 0;
      this.writeState(inst, where, l, 0, null);
      return { blobs: sentBlobs, files: sentFiles, bytes };
    } catch (err) {
      if (signal.aborted) return null;
      const why = (err as Error).message;
      this.failures++;
      const backoff = Math.min(MAX_BACKOFF_MS, offsiteSyncMs() * 2 ** Math.min(this.failures - 1, 6));
      this.notBefore = Date.now() + backoff;
      if (this.failures === 1) this.log(`continuous protection: changes could not be sent to ${where} (${why}); they wait in the local replica and are sent when it answers`);
      if (this.listed) this.writeState(inst, where, this.listed, this.state?.pending ?? 0, why);
      else this.writeFailure(inst, where, why);
      return null;
    }
  }

  /**
   * Delete offsite what the window no longer needs: files Litestream's own
   * retention already removed locally (it keeps window + 1 day) that are
   * older than that too, and settings versions the local prune removed. The
   * bucket's window is never shorter than the local one.
   */
  private async prune(inst: Instance, l: Listed, files: ReplicaFile[], encrypted: boolean, signal: AbortSignal): Promise<void> {
    const keepFrom = Date.now() - (continuousPlan(inst).windowDays + 1) * DAY_MS;
    const local = new Set(files.map((f) => objectNameOf(f, encrypted)));
        for (const name of [...l.objects]) {
      if (local.has(name)) continue;
      const t = objectTimeMs(name);
      if (!(t < keepFrom)) continue;
      signal.throwIfAborted();
      await l.target.delete(name);
      l.objects.delete(name);
      l.span = null;
    }
  }

  /**
   * What each S3 request leaves behind dies in the old generation (see
   * lib/util/gc.ts), which V8 collects only once it has grown well past its
   * size (measured: 258 MiB peak with Litestream under the bench's load). A
   * full collection after the round that made the REQUESTS_PER_MAJOR-th
   * request since the last, not amid its requests: following the bucket is
   * ~100 requests a round, beside uploads whose p99 a pause in the middle of
   * a round showed (every 100 requests mid-round: 1.51× off).
   */
  private requests = 0;

  private collectBetweenRounds(bytes: number): void {
    // A catch-up streamed megabytes through the SDK's buffers: give them back now.
    if (this.requests < REQUESTS_PER_MAJOR && bytes <= 16 * 1024 * 1024) return;
    this.requests = 0;
    collectNow();
  }

  /** One object sent: counted for health's rate, and towards the next full collection. */
  private count(bytes: number): void {
    this.requests++;
    this.objectsSent++;
    this.bytesSent += bytes;
  }

  private writeState(inst: Instance, where: string, l: Listed, pending: number, error: string | null): void {
    l.span ??= spanOf(l.objects);
    const { first, last } = l.span;
    const now = new Date().toISOString();
    const state: OffsiteContinuousState = {
      location: where,
      // To the millisecond, as the object names have them (./offsite-restore.ts offsiteWindow).
      first_restorable_at: Number.isFinite(first) ? new Date(Math.min(Math.ceil(first / 1000) * 1000, last)).toISOString() : null,
      last_restorable_at: Number.isFinite(last) && Number.isFinite(first) ? new Date(last).toISOString() : null,
      pending,
      error,
      failing_since: error ? (this.state?.failing_since ?? now) : null,
      objects_sent: this.objectsSent,
      bytes_sent: this.bytesSent,
      counting_since: this.countingSince,
    };
    this.save(inst, state);
  }

  private writeFailure(inst: Instance, where: string, why: string): void {
    const prev = readOffsiteState(inst);
    const now = new Date().toISOString();
    this.save(inst, {
      location: where,
      first_restorable_at: prev?.location === where ? prev.first_restorable_at : null,
      last_restorable_at: prev?.location === where ? prev.last_restorable_at : null,
      pending: prev?.pending ?? 0,
      error: why,
      failing_since: this.state?.failing_since ?? now,
      objects_sent: this.objectsSent,
      bytes_sent: this.bytesSent,
      counting_since: this.countingSince,
    });
  }

  /** Written when it changes (not on every round of a quiet instance). */
  private save(inst: Instance, state: OffsiteContinuousState): void {
    const same = JSON.stringify(state) === JSON.stringify(this.state);
    this.state = state;
    if (same && hasOffsiteState(inst)) return;
    writeOffsiteState(inst, state);
  }
}
