import type { DB } from "../db/connection";

export interface Actor {
  id: number | null;
  name: string | null;
  ip?: string | null;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor_id: number | null;
  actor: string | null;
  action: string;
  target: string | null;
  ip: string | null;
  detail: string | null;
}

export function audit(db: DB, actor: Actor, action: string, target?: string | null, detail?: unknown): void {
  db.prepare("INSERT INTO audit_log (at, actor_id, actor, action, target, ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?)").run(
    new Date().toISOString(),
    actor.id,
    actor.name,
    action,
    target ?? null,
    actor.ip ?? null,
    detail === undefined ? null : JSON.stringify(detail),
  );
}

export function listAudit(db: DB, opts: { limit: number; before?: number; action?: string }): AuditEntry[] {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (opts.before) {
    where.push("id < ?");
    args.push(opts.before);
  }
  if (opts.action) {
    where.push("action LIKE ?");
    args.push(`${opts.action}%`);
  }
  const sql = `SELECT * FROM audit_log ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY id DESC LIMIT ?`;
  return db.prepare(sql).all(...args, opts.limit) as AuditEntry[];
}

/** A person acting (or, for a failed sign-in, the account the attempt named). */
export const userActor = (user: { id: number; username: string }, ip: string | null = null): Actor & { id: number } => ({ id: user.id, name: user.username, ip });

/** Coffer itself, named by what acted: "scheduler", "drill", "cli", "trash purge", "setup"… */
export const systemActor = (name: string | null, ip: string | null = null): Actor => ({ id: null, name, ip });
