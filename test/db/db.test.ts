import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, migrate, COFFER_APPLICATION_ID, ForeignDatabaseError } from "@/lib/db/connection";
import { MIGRATIONS, SCHEMA_VERSION } from "@/lib/db/migrations";
import { openInstance, closeInstance } from "@/lib/instance";
import { tempDir } from "../support/instance";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function dir() {
  const d = tempDir();
  dirs.push(d);
  return d;
}

describe("database", () => {
  it("a fresh database gets WAL, Coffer's application_id and the latest user_version", () => {
    const db = openDatabase(path.join(dir(), "c.db"));
    expect(migrate(db)).toEqual({ from: 0, to: SCHEMA_VERSION });
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("foreign_keys", { simple: true })).toBe(1);
    expect(db.pragma("application_id", { simple: true })).toBe(COFFER_APPLICATION_ID);
    expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type='table' ORDER BY name").pluck().all();
    expect(tables).toEqual(expect.arrayContaining(["audit_log", "documents", "meta", "users"]));
    db.close();
  });

  it("migrates forward from an older version and keeps the data", () => {
    const file = path.join(dir(), "c.db");
    // Build a database at version 1 by hand, as an older Coffer would have left it.
    const old = new Database(file);
    old.pragma(`application_id = ${COFFER_APPLICATION_ID}`);
    old.exec(MIGRATIONS[0]);
    old.pragma("user_version = 1");
    old.prepare("INSERT INTO meta (key, value) VALUES ('instance_name', 'Old')").run();
    old.close();

    const db = openDatabase(file);
    const r = migrate(db);
    expect(r.from).toBe(1);
    expect(r.to).toBe(SCHEMA_VERSION);
    expect(db.prepare("SELECT value FROM meta WHERE key='instance_name'").pluck().get()).toBe("Old");
    // Running again is a no-op.
    expect(migrate(db)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    db.close();
  });

  it("refuses another application's database", () => {
    const file = path.join(dir(), "other.db");
    const other = new Database(file);
    other.exec("CREATE TABLE t (x)");
    other.close();
    const db = openDatabase(file);
    expect(() => migrate(db)).toThrow(ForeignDatabaseError);
    db.close();
  });

  it("a second start on an existing instance changes nothing but what migrations need", () => {
    const root = path.join(dir(), "data");
    const first = openInstance(root);
    const keys = [fs.readFileSync(first.paths.secretKey), fs.readFileSync(first.paths.configKey)];
    const settings = fs.readFileSync(first.paths.settings, "utf8");
    closeInstance(first);
    const second = openInstance(root);
    expect(fs.readFileSync(second.paths.secretKey)).toEqual(keys[0]);
    expect(fs.readFileSync(second.paths.configKey)).toEqual(keys[1]);
    expect(fs.readFileSync(second.paths.settings, "utf8")).toBe(settings);
    expect((fs.statSync(second.paths.secretKey).mode & 0o777).toString(8)).toBe("600");
    expect((fs.statSync(second.paths.configKey).mode & 0o777).toString(8)).toBe("600");
    closeInstance(second);
  });
});
