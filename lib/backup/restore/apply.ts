import { closeInstance, isSetupComplete, type Instance } from "../../instance";
import { AppError } from "../../errors";
import { type Actor } from "../../audit/log";
import { acquireLock } from "../../lock";
import { restoreSwapItems, scopeInfo } from "../format/tables";
import { writeStoredBackup } from "../local/stored";
import { readStaged } from "./staging";
import { completeJournal, crashPoint, writeJournal, type Journal } from "./journal";

export interface ApplyResult {
  restored_from: string;
  prerestore: string | null;
  warnings: string[];
}

/**
 * What a process serving requests needs to know about a restore: when to
 * answer 503 (files are being swapped) and which instance to serve after.
 * The web app passes one (lib/runtime); the CLI serves nobody and passes none.
 */
export interface RestoreHost {
  /** Resolves once nothing in this process reads the files about to be swapped (Litestream is stopped). */
  enterMaintenance(reason: string): void | Promise<void>;
  /** The instance to serve from now on: the restored one, the old one after a roll-back, or null if none could be opened. */
  leaveMaintenance(serving: Instance | null): void;
}

const NO_HOST: RestoreHost = { enterMaintenance() {}, leaveMaintenance() {} };

/**
 * Apply a staged restore, under the instance lock from before the
 * prerestore archive to after the swap. On a running instance a prerestore
 * archive is written first. Then maintenance, every connection closed, the
 * journal written (the commit point), files swapped by renames, migrations,
 * quick checks. A crash at any moment leaves the instance wholly old or
 * wholly new (recoverRestore at start-up). Returns the instance that is now
 * live (the caller owns it); `inst` is closed.
 */
export async function applyRestore(inst: Instance, id: string, actor: Actor, host: RestoreHost = NO_HOST): Promise<ApplyResult & { instance: Instance }> {
  const rec = readStaged(inst, id);
  if (!scopeInfo(rec.meta.scope).restorable) {
    throw new AppError(422, "SCOPE_NOT_RESTORABLE", "A vault-only backup holds documents' contents but not the database that names them. Restore a full backup instead.");
  }
  const root = inst.paths.root;
  const lock = await acquireLock(root, "restore");
  let prerestore: string | null = null;
  let maintenance = false;
  let serving: Instance | null = inst;
  try {
    if (isSetupComplete(inst)) {
      const pre = await writeStoredBackup(inst, { scope: "prerestore", trigger: "prerestore", actor, lock });
      prerestore = pre.name;
    }
    crashPoint("after-prerestore");
    maintenance = true;
    await host.enterMaintenance("restore");
    const delay = Number(process.env.COFFER_TEST_APPLY_DELAY_MS ?? 0);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    closeInstance(inst);
    serving = null;

    const journal: Journal = {
      id,
      created_at: new Date().toISOString(),
      phase: "swapping",
      items: restoreSwapItems(rec.meta.scope),
      restoredFrom: rec.meta.created_at,
      actor: actor.name,
      scope: rec.meta.scope,
    };
    writeJournal(root, journal);
    crashPoint("after-journal");
    const done = completeJournal(root, journal);
    serving = done.instance;
    if (done.outcome === "back") {
      throw new AppError(422, "RESTORE_CHECK_FAILED", `The restored instance failed its checks (${done.problem}), so the previous state was put back.`);
    }
    return { restored_from: journal.restoredFrom, prerestore, warnings: rec.preview.warnings, instance: done.instance };
  } finally {
    lock.release();
    if (maintenance) host.leaveMaintenance(serving);
  }
}
