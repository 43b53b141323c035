import crypto from "node:crypto";
import type { DB } from "../db/connection";

/**
 * A lease row in SQLite: whoever holds an unexpired lease may run the job,
 * in this process or any other on the same data dir. The holder renews it
 * while working and checks it again before anything irreversible.
 */
export interface Lease {
  name: string;
  holder: string;
  /** Extend the lease; false if it was lost (expired and taken by another). */
  renew(): boolean;
  /** True while this holder still owns an unexpired lease. */
  held(): boolean;
  release(): void;
}

/**
 * Every process on a data dir runs on the same host (SQLite is a local
 * file), so a holder whose process is gone (killed, crashed) cannot be
 * working any more: its lease is taken over at once instead of at expiry.
 */
function holderAlive(holder: string): boolean {
  const pid = Number(holder.split(":")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function tryAcquireLease(db: DB, name: string, ttlMs: number, now: () => number = Date.now): Lease | null {
  const holder = `${process.pid}:${crypto.randomBytes(6).toString("hex")}`;
  const got = db.transaction(() => {
    const t = now();
    const row = db.prepare("SELECT holder, expires_at FROM leases WHERE name = ?").get(name) as
      | { holder: string; expires_at: number }
      | undefined;
    if (row && row.expires_at > t && holderAlive(row.holder)) return false;
    db.prepare(
      "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
    ).run(name, holder, t + ttlMs);
    return true;
  }).immediate();
  if (!got) return null;
  let released = false;
  return {
    name,
    holder,
    renew: () => db.prepare("UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ?").run(now() + ttlMs, name, holder, now()).changes === 1,
    held: () => !!db.prepare("SELECT 1 FROM leases WHERE name = ? AND holder = ? AND expires_at > ?").get(name, holder, now()),
    release: () => {
      if (released || !db.open) return;
      released = true;
      db.prepare("DELETE FROM leases WHERE name = ? AND holder = ?").run(name, holder);
    },
  };
}
