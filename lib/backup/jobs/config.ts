import type { Instance } from "../../instance";
import { AppError } from "../../errors";
import { currentSettings } from "../../settings/store";
import { encryptionFrom, type ArchiveEncryption } from "../format/encryption";
import { scopeHasInstance, type Scope } from "../format/tables";
import { resolveBackupDir } from "../local/directory";
import { LocalDirTarget, type BackupTarget } from "../local/target";
import { locationFromSettings, type S3Location } from "../offsite/location";

/**
 * What one backup job runs with, read from settings.yaml once when it
 * starts: an edit saved while it runs applies to the next job, never to
 * half of this one (the local archive and the offsite snapshot of one job
 * are encrypted alike), and every part carries the job's one time.
 */
export interface JobConfig {
  now: Date;
  target: BackupTarget;
  encryption: ArchiveEncryption | null;
  /** Where the offsite part goes: null when offsite is off (or the scope has no database); the error when its settings cannot be used. */
  offsite: S3Location | AppError | null;
}

export function resolveJobConfig(inst: Instance, opts: { scope: Scope; target?: BackupTarget; now?: Date }): JobConfig {
  const backup = currentSettings(inst.paths.settings).backup;
  let offsite: JobConfig["offsite"] = null;
  if (scopeHasInstance(opts.scope) && backup.offsite.enabled) {
    try {
      offsite = locationFromSettings(inst, backup.offsite);
    } catch (err) {
      offsite = err instanceof AppError ? err : new AppError(422, "OFFSITE_SETTINGS", `The offsite settings cannot be used: ${(err as Error).message}`, undefined, { cause: err });
    }
  }
  return {
    now: opts.now ?? new Date(),
    target: opts.target ?? new LocalDirTarget(resolveBackupDir(inst, backup.directory)),
    encryption: encryptionFrom(inst, backup.encryption),
    offsite,
  };
}
