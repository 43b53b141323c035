import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../../instance";
import { openDatabase } from "../../db/connection";
import { LAYOUT } from "../../layout";
import { currentSettings, parseSettings } from "../../settings/store";
import { decryptSecret, isEncryptedSecret } from "../../settings/secrets";
import { cleanDocumentName } from "../../vault/documents";
import { CHANGE_SAMPLE, type NameSample, type RestoreChanges } from "./changes-words";

export type { RestoreChanges } from "./changes-words";

/**
 * What a staged restore would change against the instance now
 * (docs/architecture.md#the-restore-pipeline, stage 3): documents that would
 * disappear or come back, accounts added or removed, settings that differ.
 * The staged database is a checked file in staging, opened read-only with
 * the live database attached (read-only too: an attached database takes the
 * connection's flags), so each answer is one SQL statement, a count and at
 * most CHANGE_SAMPLE names, whatever the size of either instance. A
 * document is the same when its id and content are (ids can be reused).
 */
export function compareWithNow(inst: Instance, payload: string, now = new Date()): RestoreChanges {
  const db = openDatabase(path.join(payload, LAYOUT.database), { readonly: true });
  try {
    db.prepare("ATTACH DATABASE ? AS live").run(inst.paths.db);
    const hasColumn = (schema: "main" | "live", table: string, column: string) =>
      !!db.prepare(`SELECT 1 FROM ${schema}.pragma_table_info(?) WHERE name = ?`).get(table, column);
    // A database from before the trash (schema 9) has no deleted_at: every row of it is live.
    const alive = (schema: "main" | "live", alias: string) => (hasColumn(schema, "documents", "deleted_at") ? `${alias}.deleted_at IS NULL` : "1");
    const sample = (from: string, name: string, order: string): NameSample => ({
      count: db.prepare(`SELECT count(*) ${from}`).pluck().get() as number,
      names: (db.prepare(`SELECT ${name} ${from} ORDER BY ${order} LIMIT ${CHANGE_SAMPLE}`).pluck().all() as unknown[]).map(shown),
    });
    // Live in `a` and not live with the same id and content in `b`; a LEFT JOIN, so a staged table
    // without its primary key still gets an automatic index instead of a scan per row.
    const notIn = (a: "main" | "live", b: "main" | "live") =>
      `FROM ${a}.documents x LEFT JOIN ${b}.documents y ON y.id = x.id AND y.sha256 = x.sha256 AND ${alive(b, "y")} WHERE ${alive(a, "x")} AND y.id IS NULL`;
    const usersNotIn = (a: "main" | "live", b: "main" | "live") => `FROM ${a}.users x WHERE NOT EXISTS (SELECT 1 FROM ${b}.users y WHERE y.username = x.username COLLATE NOCASE)`;
    return {
      compared_at: now.toISOString(),
      documents: {
        disappear: sample(notIn("live", "main"), "x.name", "x.id DESC"),
        come_back: sample(notIn("main", "live"), "x.name", "x.id DESC"),
      },
      users: {
        added: sample(usersNotIn("main", "live"), "x.username", "x.username COLLATE NOCASE"),
        removed: sample(usersNotIn("live", "main"), "x.username", "x.username COLLATE NOCASE"),
      },
      settings: settingsChanges(inst, payload),
      keys_differ: [LAYOUT.secretKey, LAYOUT.configKey].some((k) => !fs.readFileSync(path.join(payload, k)).equals(fs.readFileSync(path.join(inst.paths.root, k)))),
    };
  } finally {
    db.close();
  }
}

/** A name from either database as the preview may show it: no invisible or bidi tricks, one line, bounded. */
function shown(raw: unknown): string {
  try {
    return cleanDocumentName(String(raw ?? "")).slice(0, 120);
  } catch {
    return "(no name)";
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The settings that differ, to two levels (`backup.schedule`). Secrets are
 * stored encrypted with a fresh IV each time, so each side's is compared by
 * what it decrypts to with that side's config.key.
 */
function settingsChanges(inst: Instance, payload: string): RestoreChanges["settings"] {
  const staged = parseSettings(LAYOUT.settings, fs.readFileSync(path.join(payload, LAYOUT.settings), "utf8"));
  const live = currentSettings(inst.paths.settings);
  const stagedKey = fs.readFileSync(path.join(payload, LAYOUT.configKey));
  const open = (key: Buffer, v: unknown) => {
    if (!isEncryptedSecret(v)) return v;
    try {
      return { secret: decryptSecret(key, v) };
    } catch {
      return v;
    }
  };
  const same = (a: unknown, b: unknown): boolean => {
    if (isObject(a) && isObject(b)) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      return [...keys].every((k) => same(a[k], b[k]));
    }
    if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
    return JSON.stringify(open(stagedKey, a)) === JSON.stringify(open(inst.configKey, b));
  };
  const sections: string[] = [];
  const a = staged as unknown as Record<string, unknown>;
  const b = live as unknown as Record<string, unknown>;
  for (const top of Object.keys({ ...a, ...b })) {
    if (same(a[top], b[top])) continue;
    const x = a[top];
    const y = b[top];
    if (isObject(x) && isObject(y)) {
      for (const part of Object.keys({ ...x, ...y })) if (!same(x[part], y[part])) sections.push(`${top}.${part}`);
    } else sections.push(top);
  }
  return { differ: sections.length > 0, sections };
}
