import fs from "node:fs";
import path from "node:path";
import { closeInstance } from "../../instance";
import { tryLock, describeHolder, lockHolder } from "../../lock";
import { LAYOUT } from "../../layout";
import { completeJournal, finishJournal, journalDirs, parseJournal, rollBack, JOURNAL_NAME, type Journal } from "./journal";

/** Start-up cannot go on: one line for the operator says what happened and what to do. */
export class RecoveryError extends Error {}

export type RecoveryOutcome = "none" | "forward" | "back";

/**
 * Before anything opens the database (server start-up, every CLI command):
 * an unfinished restore journal is rolled forward when the staged files are
 * still there, and back otherwise. Says "back" only when it put the old
 * files back, "forward" only when the restored instance is whole and checked.
 * A recovery that cannot finish throws RecoveryError and leaves the journal
 * for the next try. While a live process holds the instance lock (a restore
 * mid-swap) nothing is touched.
 */
export function recoverRestore(root: string): RecoveryOutcome {
  const file = path.join(root, JOURNAL_NAME);
  if (!fs.existsSync(file)) return "none";
  const lock = tryLock(root, "restore recovery");
  if (!lock) {
    const h = lockHolder(root);
    throw new RecoveryError(`a restore is being applied right now. ${h ? describeHolder(h) : ""} Try again when it has finished.`.replace(/\s+$/, ""));
  }
  try {
    let j: Journal;
    try {
      j = parseJournal(fs.readFileSync(file, "utf8"));
    } catch (err) {
      // Written atomically, so this is damage, not a crash: nothing can be known about what moved.
      throw new RecoveryError(
        `${file} cannot be read (${(err as Error).message}). An interrupted restore left it. Compare the data directory with data/${LAYOUT.staging}/*/old, then delete the journal to start with the files as they are.`,
      );
    }
    try {
      const forwardPossible = j.phase === "swapped" || (j.phase === "swapping" && fs.existsSync(/*turbopackIgnore: true*/ journalDirs(root, j).staged));
      if (!forwardPossible) {
        rollBack(root, j);
        finishJournal(root, j);
        return "back";
      }
      const done = completeJournal(root, j);
      closeInstance(done.instance);
      return done.outcome;
    } catch (err) {
      throw new RecoveryError(
        `an interrupted restore could not be finished or undone: ${(err as Error).message}. Nothing more was changed; ${JOURNAL_NAME} is kept. Fix the cause (disk full? permissions?) and start again.`,
      );
    }
  } finally {
    lock.release();
  }
}
