import crypto from "node:crypto";
import { Transform, type Readable } from "node:stream";
import type { AppError } from "../../errors";
import { checkFraming, type AgeEncryptTo } from "../../crypto/age";
import { giveWayToRequests } from "../../http/edge";
import { readArchive } from "../format/reader";
import { isEncryptedArchiveName } from "../format/tables";
import type { BackupTarget } from "./target";

/** A pass-through that hashes what it passes and keeps its first 64 KiB (the age header). */
function readBackTap(source: Readable): Transform & { sha256: () => string; size: () => number; head: () => Buffer } {
  const hash = crypto.createHash("sha256");
  const heads: Buffer[] = [];
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      if (size < 64 * 1024) heads.push(chunk);
      size += chunk.length;
      // Reading back is background work too: each MiB, requests go first.
      if ((size - chunk.length) >> 20 === size >> 20) return cb(null, chunk);
      giveWayToRequests().then(() => cb(null, chunk), cb);
    },
  });
  source.on("error", (err) => tap.destroy(err));
  source.pipe(tap);
  return Object.assign(tap, { sha256: () => hash.digest("hex"), size: () => size, head: () => Buffer.concat(heads) });
}

/** What a stored archive should be: the SHA-256 of its bytes and its meta's time, where known. */
export interface ArchiveExpectation {
  sha256: string | null;
  created_at?: string;
}

/**
 * Read a stored archive back in full and say what is wrong with it, or null.
 * A plain archive goes through the reader (every member checked against the
 * meta, every blob against its name). An encrypted one cannot be opened
 * without the identity Coffer never has: its age framing and the SHA-256 of
 * the stored ciphertext against the one recorded while writing are checked
 * (and, with a passphrase Coffer holds, it is decrypted and read in full).
 * Used right after writing (the runner) and on schedule (rolling verification).
 */
export async function proveStoredArchive(target: BackupTarget, name: string, expected: ArchiveExpectation, to: AgeEncryptTo | undefined): Promise<string | null> {
  try {
    const tap = readBackTap(await target.open(name));
    if (!isEncryptedArchiveName(name)) {
      const summary = await readArchive(tap);
      if (expected.created_at && summary.meta.created_at !== expected.created_at) return "it holds another backup's meta";
    } else if (to && "passphrase" in to) {
      const summary = await readArchive(tap, { keys: { passphrase: to.passphrase } });
      if (expected.created_at && summary.meta.created_at !== expected.created_at) return "it holds another backup's meta";
    } else {
      for await (const _ of tap);
    }
    if (expected.sha256 && tap.sha256() !== expected.sha256) return isEncryptedArchiveName(name) ? "the stored ciphertext differs from what was written" : "its bytes differ from what was written";
    if (isEncryptedArchiveName(name)) {
      const framing = checkFraming(tap.head(), tap.size());
      if (to && framing.kind !== ("passphrase" in to ? "passphrase" : "recipients")) return "it is encrypted for other keys than configured";
    }
    return null;
  } catch (err) {
    // The passphrase in settings opens new archives; an older one made with a passphrase since changed is
    // not damaged for that: it is then checked as Coffer checks what it cannot open (its bytes and framing).
    if (to && "passphrase" in to && (err as AppError).code === "KEY_MISMATCH") return proveStoredArchive(target, name, expected, undefined);
    return (err as Error).message;
  }
}
