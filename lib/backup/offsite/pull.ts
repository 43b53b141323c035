import path from "node:path";
import type { Instance } from "../instance";
import type { AgeKeys } from "../crypto/age";
import { restoreCapBytes, stageInto, type RestorePreview } from "./restore";
import { fetchSnapshotBlobs, listOffsiteSnapshots, unpackSnapshot, type OffsiteRepo } from "./offsite";
import { AppError } from "../errors";
import { LAYOUT } from "./format";

/**
 * Restore from the bucket through the same staging as an upload: the
 * snapshot archive goes through the archive reader into the staging
 * payload, the space its meta declares is admitted, the blobs are fetched
 * straight into the payload's vault (in parallel, each checked against its
 * hash, a missing or damaged object named), and stageInto's checks (the
 * database, its blobs, settings, keys) and preview follow, as for any backup.
 */
export async function stageOffsiteSnapshot(inst: Instance, repo: OffsiteRepo, name: string | null, opts: { keys?: AgeKeys; owner?: string; signal?: AbortSignal } = {}): Promise<RestorePreview> {
  const snapshot = name ?? (await newestSnapshot(repo));
  return stageInto(inst, opts.owner ?? "local", () => {}, async ({ payload, id, admit }) => {
    const snap = await unpackSnapshot(repo, snapshot, payload, opts.keys, (meta) => admit(meta, restoreCapBytes(inst, process.env, id)));
    await fetchSnapshotBlobs(repo, snap, path.join(payload, LAYOUT.vault), opts.signal);
    return { meta: snap.meta, warnings: snap.warnings, encrypted: snap.encrypted };
  });
}

export async function newestSnapshot(repo: OffsiteRepo): Promise<string> {
  const snaps = (await listOffsiteSnapshots(repo)).filter((s) => s.verified);
  if (!snaps.length) throw new AppError(404, "NOT_FOUND", "This repository has no complete snapshot to restore.");
  return snaps[0].name;
}
