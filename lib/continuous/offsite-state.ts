import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../instance";
import { currentSettings } from "../settings/store";
import { offsiteLocation, type S3Location } from "../backup/offsite/location";
import { writeFileAtomic } from "../util/fsatomic";
import { PRIVATE_DIR_MODE } from "../util/modes";
import { CONTINUOUS_STATE_DIR } from "./litestream";

/**
 * What continuous protection offsite (./offsite.ts) records for health and
 * metrics, and whether it should run: no AWS SDK here, so health and the
 * pages that only show the state do not load it.
 */

/** How often a round runs: Litestream syncs locally each second; the bucket gets a batch every few (RPO ≤ 10 s, a fifth of the PUTs). */
export const offsiteSyncMs = () => Number(process.env.COFFER_CONTINUOUS_OFFSITE_MS) || 5000;

/** What the health page and /api/health say of the bucket's copy, kept in <data>/.continuous/offsite.json. */
export interface OffsiteContinuousState {
  location: string;
  /** The newest second of the database that is in the bucket (its newest snapshot or WAL segment), or null. */
  last_restorable_at: string | null;
  /** The oldest snapshot in the bucket. */
  first_restorable_at: string | null;
  /** Files and document files waiting to be sent at the last round. */
  pending: number;
  /** Why the last round failed, and since when rounds fail; null when the last round succeeded. */
  error: string | null;
  failing_since: string | null;
  /** Since this server started: objects and bytes sent (the rate health shows). */
  objects_sent: number;
  bytes_sent: number;
  counting_since: string;
}

const statePath = (inst: Instance) => path.join(inst.paths.root, CONTINUOUS_STATE_DIR, "offsite.json");

export function readOffsiteState(inst: Instance): OffsiteContinuousState | null {
  try {
    return JSON.parse(fs.readFileSync(statePath(inst), "utf8")) as OffsiteContinuousState;
  } catch {
    return null;
  }
}

export function writeOffsiteState(inst: Instance, state: OffsiteContinuousState): void {
  fs.mkdirSync(path.dirname(statePath(inst)), { recursive: true, mode: PRIVATE_DIR_MODE });
  writeFileAtomic(statePath(inst), JSON.stringify(state, null, 2) + "\n", 0o600);
}

export const hasOffsiteState = (inst: Instance) => fs.existsSync(statePath(inst));

/** Whether continuous protection should follow the offsite location now: both on, and backup.continuous.offsite not turned off. */
export function offsiteContinuousWanted(inst: Instance): S3Location | null {
  const s = currentSettings(inst.paths.settings).backup;
  if (!s.continuous.enabled || !s.continuous.offsite) return null;
  return offsiteLocation(inst);
}

