import type { Instance } from "../instance";
import type { AgeKeys } from "../crypto/age";
import { stageArchive, type RestorePreview } from "./restore";
import { blobDamaged, exportStream, listOffsiteSnapshots, type OffsiteRepo } from "./offsite";
import { AppError } from "../errors";
import { BLOB_MEMBER_RE, isEncryptedArchiveName } from "./format";

/**
 * Restore from the bucket through the same pipeline as an upload: the
 * snapshot and its blobs are assembled into a full archive as they are
 * fetched, and stageArchive validates and stages that stream. A fault on
 * the fetching side (a missing or damaged object, a wrong key) is the error
 * reported, not the truncated stream it caused.
 */
export async function stageOffsiteSnapshot(inst: Instance, repo: OffsiteRepo, name: string | null, opts: { keys?: AgeKeys; owner?: string } = {}): Promise<RestorePreview> {
  const snapshot = name ?? (await newestSnapshot(repo));
  const { stream, done, blobObject } = exportStream(repo, snapshot, { tmpDir: inst.paths.tmp, keys: opts.keys });
  let preview: RestorePreview;
  try {
    preview = await stageArchive(inst, stream, { owner: opts.owner });
  } catch (err) {
    stream.destroy();
    const exportErr = await done.then(
      () => null,
      (e: unknown) => e,
    );
    if (exportErr) throw exportErr;
    // The stager checks each blob against its name; say which object in the bucket is damaged.
    const bad = err instanceof AppError && err.code === "CHECKSUM_MISMATCH" ? BLOB_MEMBER_RE.exec(/vault\/[0-9a-f]{2}\/[0-9a-f]{64}/.exec(err.message)?.[0] ?? "") : null;
    const object = bad ? blobObject(bad[2]) : undefined;
    throw object ? blobDamaged(repo, object) : err;
  }
  await done;
  return { ...preview, encrypted: isEncryptedArchiveName(snapshot) };
}

export async function newestSnapshot(repo: OffsiteRepo): Promise<string> {
  const snaps = (await listOffsiteSnapshots(repo)).filter((s) => s.verified);
  if (!snaps.length) throw new AppError(404, "NOT_FOUND", "This repository has no complete snapshot to restore.");
  return snaps[0].name;
}
