import crypto from "node:crypto";
import { type DB } from "../db/connection";
import { readText, writeText } from "../db/job-state";

/**
 * A random value every session is tied to. A restore replaces it, so every
 * session issued before the restore ends, whatever the restored counters say
 * (an older snapshot's session_version can equal a newer session's).
 */
export function sessionEpoch(db: DB): string {
  let epoch = readText(db, "session_epoch");
  if (!epoch) {
    epoch = crypto.randomBytes(16).toString("hex");
    writeText(db, "session_epoch", epoch);
  }
  return epoch;
}

export function renewSessionEpoch(db: DB): void {
  writeText(db, "session_epoch", crypto.randomBytes(16).toString("hex"));
}
