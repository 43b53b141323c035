import fs from "node:fs";
import path from "node:path";
import { openInstance, sweepTemp, InstanceError, type Instance } from "./instance";
import { SettingsError } from "./settings/store";
import { ensureSetupCode } from "./auth/setup";
import { resolveDataDir, type Env } from "./paths";
import { tryLock } from "./lock";
import { LAYOUT } from "./layout";
import { currentTarget } from "./backup/local/repository";
import { recoverRestore, RecoveryError, type RecoveryOutcome } from "./backup/restore/recovery";
import { sweepStaging } from "./backup/restore/staging";
import { BackupScheduler } from "./backup/jobs/scheduler";
import { DeepCheckJob } from "./doctor/job";
import { TrashPurgeJob } from "./vault/trash";
import { ProofJob } from "./backup/proof/proof";
import { recordServerPid } from "./server-pid";
import { failInterruptedRuns } from "./backup/runs";
import { ContinuousSupervisor, serverSupervisor } from "./continuous/supervisor";
import { installInstance, runtimeState } from "./runtime";

export function publicUrl(env: Env = process.env): string {
  const host = env.HOST && env.HOST !== "0.0.0.0" && env.HOST !== "::" ? env.HOST : "localhost";
  return `http://${host}:${env.PORT || "3000"}`;
}

/** Problems the operator must fix before Coffer can start: printed as one line. */
const OPERATOR_ERRORS = [InstanceError, SettingsError, RecoveryError];

/**
 * Open an instance the way every process must: an interrupted restore is
 * finished or undone first (the server at start-up, each CLI command).
 */
export function openRecoveredInstance(root: string, log: (line: string) => void = console.log): Instance {
  recoverAndSay(root, log);
  return openInstance(root);
}

/** Finish or undo an interrupted restore, and say which in one line. */
export function recoverAndSay(root: string, log: (line: string) => void = console.log): RecoveryOutcome {
  const recovered: RecoveryOutcome = fs.existsSync(root) ? recoverRestore(root) : "none";
  if (recovered === "forward") log("Coffer: finished a restore that was interrupted; the instance is now the restored one");
  if (recovered === "back") log("Coffer: undid a restore that was interrupted; the instance is as it was before");
  return recovered;
}

/**
 * Leftovers of processes that died: temp files, expired staged restores,
 * unfinished archives, runs recorded as running. Only while nobody holds
 * the instance lock: a `coffer backup` from cron may be writing right now.
 */
async function sweepLeftovers(inst: Instance): Promise<void> {
  const lock = tryLock(inst.paths.root, "start-up sweep");
  if (!lock) {
    console.log("Coffer: another Coffer process is working on this data directory; leftovers of earlier runs will be swept at the next start");
    return;
  }
  try {
    sweepTemp(inst);
    sweepStaging(inst);
    for (const name of fs.readdirSync(inst.paths.root)) {
      // Temp and stale files of the lock itself (lib/lock.ts).
      if (name.startsWith(`.${LAYOUT.lock}.`) || name.startsWith(`${LAYOUT.lock}.stale-`)) fs.rmSync(path.join(inst.paths.root, name), { force: true });
    }
    try {
      const removed = await currentTarget(inst).sweepPartials();
      if (removed.length) console.log(`Coffer: removed ${removed.length} unfinished backup file(s) left by an earlier run`);
    } catch (err) {
      console.error(`Coffer: could not check the backup directory: ${(err as Error).message}`);
    }
    failInterruptedRuns(inst.db);
  } finally {
    lock.release();
  }
}

/**
 * Runs once when the server starts (instrumentation.ts): open or create the
 * instance, sweep leftovers, start the background jobs, and tell the
 * operator what to do next in one line. A problem the operator must fix
 * ends the process with one line, no stack.
 */
export async function startCoffer(env: Env = process.env): Promise<void> {
  const dir = resolveDataDir(env);
  try {
    const inst = openRecoveredInstance(dir);
    installInstance(inst);
    recordServerPid(dir);
    const state = runtimeState();
    state.startedAt = new Date().toISOString();
    await sweepLeftovers(inst);
    if (state.jobs.length === 0) {
      // During a restore the jobs see no instance; after it, the restored one.
      const serving = () => (state.maintenance ? null : (state.instance ?? null));
      const scheduler = new BackupScheduler(serving);
      scheduler.start(Number(env.COFFER_SCHEDULER_TICK_MS) || 15_000);
      const deepCheck = new DeepCheckJob(serving);
      deepCheck.start();
      const proof = new ProofJob(serving);
      proof.start();
      const trash = new TrashPurgeJob(serving);
      trash.start();
      // Litestream, once setup is complete and backup.continuous is on (it checks every tick).
      const continuous = new ContinuousSupervisor(serving);
      continuous.start(Number(env.COFFER_SCHEDULER_TICK_MS) || 15_000);
      serverSupervisor().current = continuous;
      state.jobs.push(scheduler, deepCheck, proof, trash, continuous);
    }
    const code = ensureSetupCode(inst, env);
    if (code) {
      console.log(`Coffer is not set up yet. Open ${publicUrl(env)}/setup and enter the setup code ${code}`);
    } else {
      console.log(`Coffer is running at ${publicUrl(env)} with its data in ${dir}`);
    }
  } catch (err) {
    if (OPERATOR_ERRORS.some((E) => err instanceof E)) {
      console.error(`Coffer cannot start: ${(err as Error).message}`);
      process.exit(1);
    }
    throw err;
  }
}
