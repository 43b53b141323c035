import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import Database from "better-sqlite3";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, uploadDocument, tempDataDir, type Server } from "./support/server";

test.describe.configure({ mode: "parallel" });

const OLD_DOC = Buffer.from("the instance as it was before the restore");
const NEW_DOC = crypto.randomBytes(300_000);
let archive: Buffer;

test.beforeAll(async () => {
  // The backup to restore: an instance with a different admin password and one document.
  const s = await startServer();
  await setupInstance(s, { username: "admin", password: "restored-password-1" });
  const cookie = await signInCookie(s, "admin", "restored-password-1");
  await uploadDocument(s, cookie, "from-backup.bin", NEW_DOC);
  const res = await fetch(`${s.url}/api/backup/download?scope=full`, { headers: { cookie } });
  archive = Buffer.from(await res.arrayBuffer());
  await s.stop();
});

/** Which instance is this, and is it whole? "old", "new", or a description of what is wrong. */
async function identify(server: Server): Promise<string> {
  const db = new Database(path.join(server.dataDir, "coffer.db"), { readonly: true });
  const integrity = db.pragma("integrity_check", { simple: true });
  db.close();
  if (integrity !== "ok") return `integrity_check: ${integrity}`;
  const tryAs = async (password: string, doc: Buffer, name: string) => {
    try {
      const cookie = await signInCookie(server, "admin", password);
      const docs = (await (await fetch(`${server.url}/api/documents`, { headers: { cookie } })).json()).documents as { id: number; name: string }[];
      if (docs.length !== 1 || docs[0].name !== name) return false;
      const bytes = Buffer.from(await (await fetch(`${server.url}/api/documents/${docs[0].id}`, { headers: { cookie } })).arrayBuffer());
      return bytes.equals(doc);
    } catch {
      return false;
    }
  };
  if (await tryAs("admin-password-1", OLD_DOC, "before.txt")) return "old";
  if (await tryAs("restored-password-1", NEW_DOC, "from-backup.bin")) return "new";
  return "neither old nor new";
}

const STEPS: [string, "old" | "new"][] = [
  ["after-prerestore", "old"],
  ["after-journal", "new"],
  ["swap:coffer.db", "new"],
  ["swap:settings.yaml", "new"],
  ["swap:keys", "new"],
  ["swap:vault", "new"],
  ["after-swap", "new"],
  ["before-finish", "new"],
];

for (const [step, expected] of STEPS) {
  test(`SIGKILL at ${step}: the restart yields the ${expected} instance, whole`, async () => {
    const dataDir = tempDataDir();
    let server = await startServer({ dataDir, env: { COFFER_TEST_CRASH_AT: step } });
    await setupInstance(server);
    const cookie = await signInCookie(server, "admin", "admin-password-1");
    await uploadDocument(server, cookie, "before.txt", OLD_DOC);
    const staged = await fetch(`${server.url}/api/settings/backup/restore`, { method: "POST", headers: { cookie }, body: new Uint8Array(archive) });
    expect(staged.status).toBe(201);
    const { id } = await staged.json();
    const applying = fetch(`${server.url}/api/restore/${id}/apply`, {
      method: "POST",
      headers: { cookie, "content-type": "application/json" },
      body: JSON.stringify({ password: "admin-password-1" }),
    }).catch(() => null);
    const exited = new Promise<string | null>((r) => server.proc.once("exit", (_c, sig) => r(sig)));
    // A server that answers the apply instead of dying at the crash point fails here, saying what it answered.
    const answered = await Promise.race([exited.then(() => null), applying.then(async (res) => (res ? `${res.status} ${await res.text()}` : null))]);
    expect(answered, "the apply was answered instead of the server dying at the crash point").toBeNull();
    expect(await exited, "the server was killed at the crash point").toBe("SIGKILL");

    server = await startServer({ dataDir });
    try {
      expect(await identify(server)).toBe(expected);
      expect(fs.existsSync(path.join(dataDir, "restore-journal.json"))).toBe(false);
      expect(fs.readdirSync(path.join(dataDir, ".staging")).filter((d) => !/^[0-9a-f]{32}$/.test(d) || fs.existsSync(path.join(dataDir, ".staging", d, "old")))).toEqual([]);
      if (expected === "new") expect(server.logs()).toContain("finished a restore that was interrupted");
    } finally {
      await server.stop();
    }
  });
}
