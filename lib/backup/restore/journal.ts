import fs from "node:fs";
import path from "node:path";
import { openInstance, closeInstance, type Instance } from "../../instance";
import { fsyncDir, writeFileAtomic } from "../../util/fsatomic";
import { systemActor, audit } from "../../audit/log";
import { renewSessionEpoch } from "../../auth/epoch";
import { quickChecks } from "../../doctor/index";
import { PRIVATE_DIR_MODE } from "../../util/modes";
import { LAYOUT } from "../../layout";
import { restoreSwapItems } from "../format/tables";
import { ID_RE } from "./staging";
import { readText, writeText } from "../../db/job-state";

/**
 * The restore journal: written before the first file moves (the commit
 * point), it lets a swap be finished or undone after a crash. Apply and
 * start-up recovery both complete a journal through completeJournal.
 */
/** What moves where; recorded in the journal so a crash can be finished or undone. */
export interface Journal {
  id: string;
  created_at: string;
  /**
   * swapping: files are being moved, the new database has not been opened.
   * swapped: all moved. rolling-back: the restored instance failed its
   * checks and the old files are going back (a crash here finishes going back).
   */
  phase: "swapping" | "swapped" | "rolling-back";
  /** Live names under the data dir that are replaced, in order. */
  items: string[];
  restoredFrom: string;
  actor: string | null;
  scope: string;
}

export const JOURNAL_NAME = "restore-journal.json";

/**
 * Where a journal's files are, derived from its id, never read from the
 * journal: a damaged journal must not be able to point recovery (which
 * renames and deletes) anywhere outside data/.staging/<id>.
 */
export function journalDirs(root: string, j: Journal) {
  const base = path.join(root, LAYOUT.staging, j.id);
  return { base, staged: path.join(base, "payload"), old: path.join(base, "old") };
}

const SWAPPABLE = new Set(restoreSwapItems("full"));

export function parseJournal(text: string): Journal {
  const j = JSON.parse(text) as Journal;
  if (!j || typeof j.id !== "string" || !ID_RE.test(j.id)) throw new Error("it names no valid staged restore");
  if (!["swapping", "swapped", "rolling-back"].includes(j.phase)) throw new Error(`unknown phase ${JSON.stringify(j.phase)}`);
  if (!Array.isArray(j.items) || !j.items.every((i) => SWAPPABLE.has(i))) throw new Error("it names files a restore never replaces");
  return j;
}
const SIDECARS: readonly string[] = LAYOUT.databaseSidecars;

/** Test-only crash points: COFFER_TEST_CRASH_AT=<step> kills the process there. */
export function crashPoint(step: string): void {
  if (process.env.COFFER_TEST_CRASH_AT === step) process.kill(process.pid, "SIGKILL");
}

export function writeJournal(root: string, j: Journal): void {
  writeFileAtomic(path.join(root, JOURNAL_NAME), JSON.stringify(j, null, 2), 0o600);
}

/**
 * Swap by renames on one filesystem. Each step is idempotent, so running it
 * again after a crash finishes what was started. Only ever called while the
 * new database has not been opened (phase "swapping").
 */
function rollForward(root: string, j: Journal): void {
  for (const item of j.items) {
    const live = path.join(root, item);
    const staged = path.join(journalDirs(root, j).staged, item);
    const old = path.join(journalDirs(root, j).old, item);
    if (SIDECARS.includes(item)) {
      // The old database's WAL and SHM must not meet the new database.
      if (fs.existsSync(live)) {
        if (fs.existsSync(old)) fs.rmSync(live, { force: true });
        else {
          fs.mkdirSync(path.dirname(old), { recursive: true, mode: PRIVATE_DIR_MODE });
          fs.renameSync(live, old);
        }
      }
      continue;
    }
    if (!fs.existsSync(staged)) continue; // already moved in
    if (fs.existsSync(live)) {
      if (fs.existsSync(old)) fs.rmSync(live, { recursive: true, force: true });
      else {
        fs.mkdirSync(path.dirname(old), { recursive: true, mode: PRIVATE_DIR_MODE });
        fs.renameSync(live, old);
      }
    }
    fs.renameSync(staged, live);
    crashPoint(`swap:${item}`);
  }
  fsyncDir(root);
}

/** Put the old files back. After "swapped" the live sidecars belong to the new database and go. */
export function rollBack(root: string, j: Journal): void {
  for (const item of [...j.items].reverse()) {
    const live = path.join(root, item);
    const old = path.join(journalDirs(root, j).old, item);
    if (fs.existsSync(old)) {
      fs.rmSync(live, { recursive: true, force: true });
      fs.renameSync(old, live);
      crashPoint(`rollback:${item}`);
    } else if (SIDECARS.includes(item) && j.phase !== "swapping") {
      fs.rmSync(live, { force: true });
    }
  }
  fsyncDir(root);
}

export function finishJournal(root: string, j: Journal): void {
  fs.rmSync(path.join(root, JOURNAL_NAME), { force: true });
  fsyncDir(root);
  fs.rmSync(journalDirs(root, j).base, { recursive: true, force: true });
}

/** The doctor's quick checks after a swap; any failure rolls the restore back. */
function quickCheck(inst: Instance): string | null {
  const failed = quickChecks(inst).filter((f) => f.severity === "fail");
  return failed.length ? failed.map((f) => `${f.check}: ${f.message}`).join("; ") : null;
}

/**
 * After the new files are in: every session ends, the restore is audited in
 * the restored database. Idempotent (a crash right after it must not repeat it).
 */
function afterSwap(inst: Instance, j: Journal): void {
  inst.db.transaction(() => {
    if (readText(inst.db, "last_restore_id") === j.id) return;
    inst.db.prepare("UPDATE users SET session_version = session_version + 1").run();
    renewSessionEpoch(inst.db);
    if (!readText(inst.db, "setup_completed_at")) writeText(inst.db, "setup_completed_at", new Date().toISOString());
    writeText(inst.db, "last_restore_id", j.id);
    writeText(inst.db, "restored_from", j.restoredFrom);
    audit(inst.db, systemActor(j.actor), "restore.apply", j.restoredFrom, { scope: j.scope });
  })();
  fs.rmSync(inst.paths.setupToken, { force: true });
}

export type Completion = { outcome: "forward"; instance: Instance } | { outcome: "back"; instance: Instance; problem: string };

/**
 * From any phase: swap what is left, open, migrate, check. On a failed check
 * the old files go back and the old instance is opened instead.
 */
export function completeJournal(root: string, j: Journal): Completion {
  if (j.phase === "swapping") {
    rollForward(root, j);
    j.phase = "swapped";
    writeJournal(root, j);
  }
  crashPoint("after-swap");
  let inst: Instance | undefined;
  let problem: string | null = null;
  try {
    inst = openInstance(root);
    problem = quickCheck(inst);
  } catch (err) {
    problem = (err as Error).message;
  }
  if (problem) {
    if (inst) closeInstance(inst);
    j.phase = "rolling-back";
    writeJournal(root, j);
    rollBack(root, j);
    finishJournal(root, j);
    return { outcome: "back", instance: openInstance(root), problem };
  }
  afterSwap(inst!, j);
  crashPoint("before-finish");
  finishJournal(root, j);
  return { outcome: "forward", instance: inst! };
}

