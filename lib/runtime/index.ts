import { AppError } from "../errors";
import { openInstance, closeInstance, type Instance } from "../instance";
import { resolveDataDir } from "../paths";
import { runtimeState, inMaintenance, generation } from "./state";
import type { RestoreHost } from "../backup/restore/apply";
import { serverSupervisor } from "../continuous/supervisor";

export { runtimeState, inMaintenance, generation };

export const maintenanceError = () => new AppError(503, "MAINTENANCE", "A restore is running. Try again in a moment.");

/** The instance this process serves (COFFER_DATA_DIR), opened on first use; 503 while a restore swaps files. */
export function getInstance(): Instance {
  const s = runtimeState();
  if (s.maintenance) throw maintenanceError();
  if (!s.instance || !s.instance.db.open) s.instance = openInstance(resolveDataDir());
  return s.instance;
}

/** Serve `inst` from now on; the one it replaces is closed. */
export function installInstance(inst: Instance): void {
  const s = runtimeState();
  if (s.instance && s.instance !== inst) closeInstance(s.instance);
  s.instance = inst;
  s.generation++;
}

/**
 * How a restore in this process tells the web app what is happening: 503s
 * while files are swapped, then the instance to serve. The CLI passes none.
 */
export const webRestoreHost: RestoreHost = {
  async enterMaintenance(reason) {
    const s = runtimeState();
    s.maintenance = { since: new Date().toISOString(), reason };
    s.generation++;
    await serverSupervisor().current?.pause();
  },
  leaveMaintenance(serving) {
    const s = runtimeState();
    if (serving) installInstance(serving);
    else s.generation++;
    s.maintenance = undefined;
    serverSupervisor().current?.resume();
  },
};
