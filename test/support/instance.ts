import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openInstance, closeInstance, type Instance } from "@/lib/instance";
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
