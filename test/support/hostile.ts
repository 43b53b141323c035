import zlib from "node:zlib";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { tarHeader, tarPadding, TAR_END } from "@/lib/backup/format/tar";
import { unpackToMemory } from "./archive";
import { tempDir } from "./instance";

export interface Entry {
  name: string;
  data?: Buffer;
  /** tar typeflag: "0" file, "1" hardlink, "2" symlink, "3" char, "4" block, "5" dir, "6" fifo, "x" pax, "L" GNU long name */
  type?: string;
  linkname?: string;
  /** Declared size, when it should differ from data's length. */
  size?: number;
}

const MTIME = new Date("2026-11-22T00:00:00Z");

export function tarOf(entries: Entry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(tarHeader(e.name, e.size ?? data.length, MTIME, 0o644, e.type ?? "0", e.linkname ?? ""));
    parts.push(data, tarPadding(data.length));
  }
  if (opts.end !== false) parts.push(TAR_END);
  return Buffer.concat(parts);
}

export const gz = (b: Buffer) => zlib.gzipSync(b, { level: 1 });

export function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.from(`${len}${body}`);
}

export const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

/** Change the meta (and keep it first). */
export function withMeta(entries: Entry[], change: (m: Record<string, any>) => void): Entry[] {
  const meta = JSON.parse(entries[0].data!.toString());
  change(meta);
  return [{ name: "backup_meta.json", data: Buffer.from(JSON.stringify(meta)) }, ...entries.slice(1)];
}

/** Replace a member's content and fix the meta so only the content itself is wrong. */
export function replaceMember(entries: Entry[], name: string, data: Buffer): Entry[] {
  const out = entries.map((e) => (e.name === name ? { ...e, data } : e));
  return withMeta(out, (m) => (m.members[name] = { size: data.length, sha256: sha256(data) }));
}

/** A backup or snapshot archive with its database changed by `sql` (what an attacker with write access to a bucket does). */
export async function withDatabase(cleanups: (() => void)[], archive: Buffer, sql: string): Promise<Buffer> {
  const dir = tempDir("coffer-hostile-db-");
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "s.tar.gz");
  fs.writeFileSync(file, archive);
  const entries: Entry[] = [...(await unpackToMemory(file))].map(([name, data]) => ({ name, data }));
  const dbFile = path.join(dir, "coffer.db");
  fs.writeFileSync(dbFile, entries.find((e) => e.name === "coffer.db")!.data!);
  const db = new Database(dbFile);
  db.exec(sql);
  db.pragma("journal_mode = DELETE");
  db.close();
  return gz(tarOf(replaceMember(entries, "coffer.db", fs.readFileSync(dbFile))));
}
