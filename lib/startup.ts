import { openInstance, processState, sweepTemp, InstanceError } from "./instance";
import { SettingsError } from "./settings/store";
import { ensureSetupCode } from "./auth/setup";
import { resolveDataDir, type Env } from "./paths";
import fs from "node:fs";
import { currentBackupDir, sweepPartialArchives } from "./backup/store";
import { recoverRestore, sweepStaging } from "./backup/restore";
import { BackupScheduler } from "./backup/scheduler";
import { recordServerPid } from "./server-pid";

export function publicUrl(env: Env = process.env): string {
  const host = env.HOST && env.HOST !== "0.0.0.0" && env.HOST !== "::" ? env.HOST : "localhost";
  return `http://${host}:${env.PORT || "3000"}`;
}

/**
 * Runs once when the server starts (instrumentation.ts): open or create the
 * instance, sweep leftovers, and tell the operator what to do next in one line.
 * A problem the operator must fix ends the process with one line, no stack.
 */
export function startCoffer(env: Env = process.env): void {
  const dir = resolveDataDir(env);
  try {
    const recovered = fs.existsSync(dir) ? recoverRestore(dir) : "none";
    if (recovered === "forward") console.log("Coffer: finished a restore that was interrupted; the instance is now the restored one");
    if (recovered === "back") console.log("Coffer: undid a restore that was interrupted; the instance is as it was before");
    const inst = openInstance(dir);
    processState().instance = inst;
    recordServerPid(dir);
    processState().startedAt = new Date().toISOString();
    sweepTemp(inst);
    sweepStaging(inst);
    try {
      const removed = sweepPartialArchives(currentBackupDir(inst));
      if (removed.length) console.log(`Coffer: removed ${removed.length} unfinished backup file(s) left by an earlier run`);
    } catch (err) {
      console.error(`Coffer: could not check the backup directory: ${(err as Error).message}`);
    }
    // A run recorded as running belongs to a process that is gone.
    inst.db.prepare("UPDATE backup_runs SET status = 'failed', finished_at = ?, error = 'Coffer stopped while this backup was running' WHERE status = 'running'").run(new Date().toISOString());
    const state = processState();
    if (!state.scheduler) {
      const scheduler = new BackupScheduler(() => (state.maintenance ? null : (state.instance ?? null)));
      scheduler.start(Number(env.COFFER_SCHEDULER_TICK_MS) || 15_000);
      state.scheduler = scheduler;
    }
    const code = ensureSetupCode(inst, env);
    if (code) {
      console.log(`Coffer is not set up yet. Open ${publicUrl(env)}/setup and enter the setup code ${code}`);
    } else {
      console.log(`Coffer is running at ${publicUrl(env)} with its data in ${dir}`);
    }
  } catch (err) {
    if (err instanceof InstanceError || err instanceof SettingsError) {
      console.error(`Coffer cannot start: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}
