import fs from "node:fs";
import path from "node:path";
import { Readable, type Transform } from "node:stream";
import type { Instance } from "../instance";
import { AppError } from "../errors";
import { openDatabase } from "../db/connection";
import { LAYOUT } from "../layout";
import { PRIVATE_DIR_MODE } from "../util/modes";
import { eachLimit } from "../util/concurrency";
import { AGE_MAGIC, AgeError, createDecryptStream, type AgeKeys } from "../crypto/age";
import { INSTANCE_MEMBERS, type BackupMeta } from "../backup/format/tables";
import { sha256File } from "../backup/format/db-snapshot";
import { ArchiveError } from "../backup/format/reader";
import { blobPathIn, writeNewFileUnder } from "../backup/restore/payload";
import { restoreCapBytes, stageInto, type RestorePreview } from "../backup/restore/staging";
import { describeLocation } from "../backup/offsite/location";
import { transferStopped } from "../backup/offsite/s3";
import { blobNamer, repositoryIdentity, type OffsiteRepo } from "../backup/offsite/repository";
import { ageBound, BLOB_CONCURRENCY, fetchBlob } from "../backup/offsite/transfer";
import { litestreamBinary } from "./litestream";
import { iso, pointInTimeMeta, rebuildDatabase } from "./pitr";
import { continuousTarget, objectTimeMs } from "./offsite";
import { readSettingsVersion, VERSION_NAME_RE } from "./versions";

/**
 * A point in time restored from the bucket (docs/architecture.md#continuous-protection), for a
 * server that lost its disk: the replica files a time needs are fetched
 * into staging and laid out as Litestream's file replica (each with the
 * mtime its name carries), `litestream restore -timestamp` rebuilds the
 * database, the settings version in effect then gives settings.yaml and the
 * keys (and, through the secret key, the blob names and the repository
 * identity), and the document files come from the bucket's blobs. Every
 * byte is untrusted: names are matched before use, every object is cut at
 * its listed size, decrypted by its content, and the result goes through
 * stageInto's checks like any backup.
 */

/** One object of the bucket's continuous prefix, by its name. */
export interface ContinuousObject {
  name: string;
  size: number;
  kind: "snapshot" | "wal" | "settings";
  generation: string | null;
  /** Litestream's index (and offset) within a generation; 0 for settings. */
  index: number;
  offset: number;
  /** The replica file's mtime (the time a settings version took effect). */
  at: number;
  encrypted: boolean;
  /** Where the file goes in a rebuilt replica. */
  rel: string;
}

const REPLICA_RE = /^generations\/([0-9a-f]{16})\/(snapshots\/([0-9a-f]{8})\.snapshot\.lz4|wal\/([0-9a-f]{8})_([0-9a-f]{8})\.wal\.lz4)\.(\d{13})(\.age)?$/;
const SETTINGS_RE = /^settings\/([^/]+\.json)(\.age)?$/;

export function parseContinuousObject(name: string, size: number): ContinuousObject | null {
  // A size the bucket made up (negative, fractional, NaN) would become every cap below.
  if (!Number.isSafeInteger(size) || size < 0) return null;
  const r = REPLICA_RE.exec(name);
  if (r) {
    const [, generation, file, snapIndex, walIndex, walOffset, at, age] = r;
    return {
      name,
      size,
      kind: snapIndex ? "snapshot" : "wal",
      generation,
      index: parseInt(snapIndex ?? walIndex, 16),
      offset: walOffset ? parseInt(walOffset, 16) : 0,
      at: Number(at),
      encrypted: !!age,
      rel: `generations/${generation}/${file}`,
    };
  }
  const s = SETTINGS_RE.exec(name);
  if (s && VERSION_NAME_RE.test(s[1])) return { name, size, kind: "settings", generation: null, index: 0, offset: 0, at: objectTimeMs(name), encrypted: !!s[2], rel: `settings/${s[1]}` };
  return null;
}

export interface OffsiteWindow {
  first: Date | null;
  last: Date | null;
}

/**
 * What the bucket covers, as Litestream counts a replica's span: from its
 * oldest snapshot (its first whole second) to its newest file, to the
 * millisecond (a segment written at 10:41:07.6 is reached by 10:41:07.6,
 * not by 10:41:07).
 */
export function offsiteWindow(objects: ContinuousObject[]): OffsiteWindow {
  let first = Infinity;
  let last = -Infinity;
  const withSnapshot = new Set(objects.filter((o) => o.kind === "snapshot").map((o) => o.generation));
  for (const o of objects) {
    if (o.kind === "settings" || !withSnapshot.has(o.generation)) continue;
    if (o.kind === "snapshot") first = Math.min(first, o.at);
    last = Math.max(last, o.at);
  }
  if (!Number.isFinite(first)) return { first: null, last: null };
  // The first whole second inside (a person picks seconds), unless the span is shorter than that.
  return { first: new Date(Math.min(Math.ceil(first / 1000) * 1000, last)), last: new Date(last) };
}

/**
 * One object per place in the replica. A second copy under another name is a
 * repository sent under two encryption modes (the encrypted copy is taken:
 * the shipper sends everything again when encryption is turned on) or an
 * altered one.
 */
function onePerPlace(objects: ContinuousObject[], where: string): ContinuousObject[] {
  const byRel = new Map<string, ContinuousObject>();
  for (const o of objects) {
    const other = byRel.get(o.rel);
    if (!other) byRel.set(o.rel, o);
    else if (other.encrypted !== o.encrypted) byRel.set(o.rel, other.encrypted ? other : o);
    else throw new AppError(422, "OFFSITE_CORRUPT", `${where} holds two copies of continuous/${o.rel} (${other.name} and ${o.name}): the repository has been altered. Nothing was restored.`);
  }
  return [...byRel.values()];
}

export interface OffsiteRestorePlan {
  generation: string;
  /** The snapshot and WAL segments Litestream reads for `at`, in order. */
  files: ContinuousObject[];
  /** The settings version in effect at `at`. */
  settings: ContinuousObject;
}

/**
 * Which objects a restore to `at` needs, decided from the listing alone (as
 * Litestream's CalcRestoreTarget would over the whole replica): the
 * generation whose span holds `at` and that was updated last; its newest
 * snapshot at or before `at`; the segments from that snapshot's index up to
 * `at`. The -timestamp Litestream gets is the newest of those
 * (litestreamTimestamp), so the rebuilt replica's span ends at it.
 */
export function planOffsiteRestore(listed: ContinuousObject[], at: Date, where: string): OffsiteRestorePlan {
  const objects = onePerPlace(listed, where);
  const w = offsiteWindow(objects);
  if (!w.first || !w.last) throw new AppError(404, "CONTINUOUS_EMPTY", `${where} holds no continuous copy to restore from.`);
  if (at < w.first || at > w.last) {
    throw new AppError(422, "OUTSIDE_WINDOW", `${iso(at)} is outside the window the continuous copy in ${where} covers: from ${iso(w.first)} to ${iso(w.last)} (UTC). Choose a time in it.`);
  }
  const t = at.getTime();
  // Grouped in one pass, without spreading a generation into Math.min/max: a week of WAL is tens of thousands of objects.
  const byGeneration = new Map<string, ContinuousObject[]>();
  for (const o of objects) {
    if (!o.generation) continue;
    const list = byGeneration.get(o.generation);
    if (list) list.push(o);
    else byGeneration.set(o.generation, [o]);
  }
  let best: { generation: string; updated: number; files: ContinuousObject[] } | null = null;
  for (const [generation, list] of byGeneration) {
    let created = Infinity;
    let updated = -Infinity;
    for (const o of list) {
      if (o.kind === "snapshot" && o.at < created) created = o.at;
      if (o.at > updated) updated = o.at;
    }
    if (!Number.isFinite(created) || t < created || t > updated) continue;
    if (best && updated <= best.updated) continue;
    const snapshot = list.filter((o) => o.kind === "snapshot" && o.at <= t).sort((a, b) => b.index - a.index || b.at - a.at)[0];
    if (!snapshot) continue;
    // Litestream replays the segments from the snapshot's index whose time is at or before the one asked for; the -timestamp
    // passed is the newest of them (litestreamTimestamp), so the rebuilt replica's span ends there and holds it.
    const wal = list.filter((o) => o.kind === "wal" && o.index >= snapshot.index && o.at <= t).sort((a, b) => a.index - b.index || a.offset - b.offset);
    best = { generation, updated, files: [snapshot, ...wal] };
  }
  if (!best) throw new AppError(422, "OUTSIDE_WINDOW", `No continuous copy in ${where} covers ${iso(at)}; the window runs from ${iso(w.first)} to ${iso(w.last)} (UTC), with gaps where the instance was restored or stopped.`);
  const settings = objects.filter((o) => o.kind === "settings" && o.at <= t).sort((a, b) => b.at - a.at)[0];
  if (!settings) throw new AppError(422, "CONTINUOUS_SETTINGS_MISSING", `${where} keeps no settings from ${iso(at)} or before, so that point in time cannot be restored whole.`);
  if (best.files.length > MAX_PLAN_FILES) {
    throw new AppError(413, "TOO_LARGE", `Restoring ${iso(at)} from ${where} would read ${best.files.length} replica files, more than Coffer reads for one point in time (${MAX_PLAN_FILES}). Choose a time closer after a snapshot, or restore from a snapshot.`);
  }
  // Encrypted is what the bytes are (checked as each is fetched), and a copy that was encrypted stays so: an encrypted
  // repository that offers a plain object for this time has had it planted.
  if (objects.some((o) => o.encrypted) && [settings, ...best.files].some((o) => !o.encrypted)) {
    throw new AppError(422, "OFFSITE_NAME_MISMATCH", `${where} keeps its continuous copy encrypted, but offers plain objects for ${iso(at)}: the repository has been altered. Nothing was restored.`);
  }
  return { generation: best.generation, files: best.files, settings };
}

/** The most replica files one point in time is rebuilt from (an hour of WAL between snapshots is at most 3,600 segments a generation). */
const MAX_PLAN_FILES = 200_000;
const SETTINGS_MAX_BYTES = 1024 * 1024 + 64 * 1024;

function damaged(where: string, name: string, why: string): AppError {
  return new AppError(422, "OFFSITE_CORRUPT", `The object continuous/${name} in ${where} is damaged: ${why}. Choose another time, or restore from a snapshot.`);
}

/**
 * Fetch one continuous object into `root/rel`, cut at `maxBytes`, decrypted
 * when its bytes (not its name) are an age file: a name that disagrees with
 * the content is an altered repository.
 */
async function fetchObject(repo: OffsiteRepo, o: ContinuousObject, root: string, keys: AgeKeys | null, maxBytes: number, signal?: AbortSignal): Promise<void> {
  const where = describeLocation(repo.loc);
  const target = continuousTarget(repo);
  let body: Readable;
  try {
    body = await target.open(o.name, { maxBytes, signal });
  } catch (err) {
    if ((err as AppError).status === 404) throw new AppError(422, "OFFSITE_MISSING", `The object continuous/${o.name} in ${where} is missing, though it was listed. Try again, or choose another time.`);
    throw err;
  }
  const it = body[Symbol.asyncIterator]();
  // Enough bytes to tell an age file by its header, however the store chunks them.
  let first = Buffer.alloc(0);
  for (;;) {
    if (first.length >= AGE_MAGIC.length) break;
    const head = await it.next();
    if (head.done) break;
    first = Buffer.concat([first, head.value as Buffer]);
  }
  const isAge = first.subarray(0, AGE_MAGIC.length).equals(AGE_MAGIC);
  if (isAge !== o.encrypted) {
    body.destroy();
    throw new AppError(422, "OFFSITE_NAME_MISMATCH", `The object continuous/${o.name} in ${where} is ${isAge ? "encrypted" : "not encrypted"}, but its name says otherwise: the repository has been altered. Nothing was restored.`);
  }
  if (isAge && !keys) {
    body.destroy();
    throw new AppError(400, "KEY_REQUIRED", "This continuous copy is encrypted: give its age identity (AGE-SECRET-KEY-1…, from the recovery kit) or its passphrase to read it.");
  }
  const rest = Readable.from(
    (async function* () {
      if (first.length) yield first;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value as Buffer;
      }
    })(),
  );
  const through: Transform[] = isAge && keys ? [createDecryptStream(keys)] : [];
  try {
    await writeNewFileUnder(root, o.rel, rest, { through, maxBytes: o.encrypted ? undefined : maxBytes, signal });
  } catch (err) {
    body.destroy();
    if (err instanceof AgeError) {
      if (err.code === "KEY_MISMATCH" || err.code === "KEY_REQUIRED" || err.code === "KEY_INVALID") throw new AppError(err.code === "KEY_MISMATCH" ? 422 : 400, err.code, err.message);
      throw damaged(where, o.name, err.code === "ARCHIVE_TAMPERED" ? "it does not decrypt (altered or cut short)" : err.message);
    }
    if (signal?.aborted) throw transferStopped(signal.reason);
    throw err;
  }
  const t = new Date(o.at);
  fs.utimesSync(path.join(root, o.rel), t, t);
}

/**
 * The -timestamp for `at` over a rebuilt replica. utimes takes seconds as a
 * double, so a file meant for 15:39:34.461 can land at .460999999, and
 * Litestream, which compares to the nanosecond, would then find `at` after
 * the replica's last file ("no matching backups found"). The newest file
 * meant for `at` or before, read back to the nanosecond, is the same point
 * in time and inside the span.
 */
function litestreamTimestamp(replica: string, files: ContinuousObject[], at: Date): string {
  let newest = 0n;
  for (const o of files) {
    if (o.at > at.getTime()) continue;
    const ns = fs.statSync(path.join(replica, o.rel), { bigint: true }).mtimeNs;
    if (ns > newest) newest = ns;
  }
  const sec = newest / 1_000_000_000n;
  const frac = (newest % 1_000_000_000n).toString().padStart(9, "0");
  return `${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${frac}Z`;
}

/** Every continuous object in the bucket that has a name Coffer writes (the listing bounded as every listing). */
export async function listContinuousObjects(repo: OffsiteRepo, signal?: AbortSignal): Promise<ContinuousObject[]> {
  const out: ContinuousObject[] = [];
  for (const o of await continuousTarget(repo).list({ signal })) {
    const c = parseContinuousObject(o.name, o.size);
    if (c) out.push(c);
  }
  return out;
}

/** The window the bucket's continuous copy covers, and whether it is encrypted (the wizard shows both before a time is chosen). */
export async function offsiteContinuousWindow(repo: OffsiteRepo, signal?: AbortSignal): Promise<{ first_restorable_at: string | null; last_restorable_at: string | null; encrypted: boolean }> {
  const objects = await listContinuousObjects(repo, signal);
  const w = offsiteWindow(objects);
  return { first_restorable_at: w.first?.toISOString() ?? null, last_restorable_at: w.last?.toISOString() ?? null, encrypted: objects.some((o) => o.encrypted) };
}

/**
 * Stage the instance as it was at `at` from the bucket's continuous copy,
 * through the same staging as every restore. `keys` decrypt an encrypted
 * copy (the recovery kit's identity or the passphrase), as for a snapshot.
 */
export async function stageOffsitePointInTime(inst: Instance, repo: OffsiteRepo, at: Date, opts: { keys?: AgeKeys; owner?: string; signal?: AbortSignal } = {}): Promise<RestorePreview> {
  const binary = litestreamBinary();
  if (!binary) throw new AppError(503, "CONTINUOUS_UNAVAILABLE", "Restoring to a point in time needs Litestream, which is not installed here (npm install @flydotio/litestream-linux-x64, or set COFFER_LITESTREAM).");
  const where = describeLocation(repo.loc);
  const plan = planOffsiteRestore(await listContinuousObjects(repo, opts.signal), at, where);
  return stageInto(inst, opts.owner ?? "local", () => {}, async ({ payload, id, admit }) => {
    const cap = restoreCapBytes(inst, process.env, id);
    const listed = plan.files.reduce((a, o) => a + (o.encrypted ? ageBound(o.size) : o.size), 0);
    if (listed > cap) throw new ArchiveError("TOO_LARGE", `The continuous copy of ${iso(at)} is ${listed} bytes, more than this server takes in staging.`, 413);
    const work = path.join(path.dirname(payload), "continuous");
    fs.mkdirSync(work, { recursive: true, mode: PRIVATE_DIR_MODE });

    // The settings and keys of that time first: the secret key names the blobs and opens the repository identity.
    const userKeys: AgeKeys | null = opts.keys ?? null;
    await fetchObject(repo, plan.settings, work, userKeys, SETTINGS_MAX_BYTES, opts.signal);
    const vName = path.basename(plan.settings.rel);
    const m = VERSION_NAME_RE.exec(vName)!;
    let content;
    try {
      content = readSettingsVersion({ at: new Date(plan.settings.at), sha256: m[2], file: path.join(work, plan.settings.rel) });
    } catch (err) {
      throw err instanceof AppError ? new AppError(422, err.code, err.message.replace(/restore from a backup archive of that time instead/, "choose another time, or restore from a snapshot")) : err;
    }
    // The blob names follow the copy's own encryption (judged by content as it was fetched), not what its settings say.
    const encrypted = plan.settings.encrypted;
    // Replica files and blobs are encrypted to the recipients and the repository identity, never to the passphrase.
    const fileKeys: AgeKeys = { identities: [...(userKeys?.identities ?? []), repositoryIdentity(content.secretKey)] };

    const replica = path.join(work, "replica");
    await eachLimit(plan.files, BLOB_CONCURRENCY, async (o) => {
      if (opts.signal?.aborted) throw transferStopped(opts.signal.reason);
      await fetchObject(repo, o, replica, fileKeys, o.encrypted ? ageBound(o.size) : o.size, opts.signal);
    });
    let rebuilt;
    try {
      rebuilt = await rebuildDatabase(binary, replica, at, path.join(payload, LAYOUT.database), opts.signal, litestreamTimestamp(replica, plan.files, at));
    } catch (err) {
      // Every file was the bucket's: one Litestream cannot read is a damaged copy, not the server failing.
      if (err instanceof AppError && err.code === "CONTINUOUS_RESTORE_FAILED") throw new AppError(422, "OFFSITE_CORRUPT", `The continuous copy in ${where} does not rebuild a database at ${iso(at)}: its files are damaged or incomplete. Choose another time, or restore from a snapshot.`);
      throw err;
    }
    fs.rmSync(work, { recursive: true, force: true });

    for (const [member, bytes] of [
      [LAYOUT.settings, Buffer.from(content.settings, "utf8")],
      [LAYOUT.secretKey, content.secretKey],
      [LAYOUT.configKey, content.configKey],
    ] as const) {
      await writeNewFileUnder(payload, member, Readable.from([bytes]));
    }
    // The sizes the checked database gives each document: every blob is cut at its own.
    const db = openDatabase(path.join(payload, LAYOUT.database), { readonly: true });
    let sizes: Map<string, number>;
    try {
      sizes = new Map((db.prepare("SELECT sha256, max(size) AS size FROM documents GROUP BY sha256").all() as { sha256: string; size: number }[]).map((r) => [r.sha256, r.size]));
    } finally {
      db.close();
    }
    const nameOf = blobNamer(content.secretKey, encrypted);
    const wanted = rebuilt.hashes.map((sha) => {
      const size = sizes.get(sha);
      if (!Number.isSafeInteger(size) || (size as number) < 0) throw new ArchiveError("DB_CORRUPT", `The database of ${iso(at)} gives a document a size that is not a byte count; it has been altered. Nothing was restored.`, 422);
      return { sha, obj: nameOf(sha), size: size as number };
    });
    const vaultBytes = wanted.reduce((a, w) => a + w.size, 0);
    const members: BackupMeta["members"] = {};
    for (const mName of INSTANCE_MEMBERS) members[mName] = await sha256File(path.join(payload, mName));
    const meta = pointInTimeMeta(at, rebuilt, members, vaultBytes);
    admit(meta, cap);
    const vault = path.join(payload, LAYOUT.vault);
    fs.mkdirSync(vault, { recursive: true, mode: PRIVATE_DIR_MODE });
    await eachLimit(wanted, BLOB_CONCURRENCY, async (w) => {
      if (opts.signal?.aborted) throw transferStopped(opts.signal.reason);
      blobPathIn(vault, w.sha);
      await fetchBlob(repo, w, vault, `${w.sha.slice(0, 2)}/${w.sha}`, encrypted ? fileKeys : null, opts.signal);
    });
    const warnings = [`This is the instance as it was at ${iso(at)}, from the continuous copy in ${where}: its database, and the settings and keys in effect then (kept since ${iso(new Date(plan.settings.at))}).`];
    return { meta, warnings, encrypted };
  });
}
