import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import { openInstance, closeInstance, type Instance } from "@/lib/instance";
import { applyRestore } from "@/lib/backup/restore/apply";
import { completeNewSetup, ensureSetupCode } from "@/lib/auth/setup";
import { createUser, type User } from "@/lib/auth/users";

export function tempDir(prefix = "coffer-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A real instance in a fresh temp data dir; `cleanup` closes and removes it. */
export function makeInstance(): { inst: Instance; dir: string; cleanup: () => void } {
  const dir = tempDir();
  const inst = openInstance(path.join(dir, "data"));
  return {
    inst,
    dir,
    cleanup: () => {
      closeInstance(inst);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An instance past New setup with an admin and a member. */
export async function makeSetUpInstance() {
  const t = makeInstance();
  const token = ensureSetupCode(t.inst, {})!;
  const admin = await completeNewSetup(
    t.inst,
    { token, instance_name: "Test", username: "admin", password: "admin-password-1" },
    "127.0.0.1",
  );
  const member: User = await createUser(t.inst, { id: admin.id, name: admin.username }, {
    username: "mia",
    password: "member-password-1",
    role: "member",
  });
  return { ...t, admin, member };
}

/**
 * A fresh, empty instance restored from what `stage` stages into it (a
 * bucket's snapshot, a point in time), applied as the wizard would; the
 * restored instance is closed and removed by `cleanups`.
 */
export async function restoreIntoFresh<P extends { id: string }>(stage: (fresh: Instance) => Promise<P>, cleanups: (() => unknown)[]): Promise<{ preview: P; inst: Instance }> {
  const fresh = makeInstance();
  let live: Instance = fresh.inst;
  cleanups.push(() => {
    closeInstance(live);
    fs.rmSync(fresh.dir, { recursive: true, force: true });
  });
  const preview = await stage(fresh.inst);
  const r = await applyRestore(fresh.inst, preview.id, { id: null, name: "test" });
  live = r.instance;
  return { preview, inst: r.instance };
}

/** Each document's name and the SHA-256 of its vault file as read back. */
export function documentContents(inst: Instance): Map<string, string> {
  const rows = inst.db.prepare("SELECT name, sha256 FROM documents").all() as { name: string; sha256: string }[];
  const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
  return new Map(rows.map((r) => [r.name, sha(fs.readFileSync(path.join(inst.paths.vault, r.sha256.slice(0, 2), r.sha256)))]));
}
