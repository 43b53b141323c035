import fs from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { ensureSetupCode, requireSetupCode, completeNewSetup, SETUP_CODE_LIMIT } from "@/lib/auth/setup";
import { isSetupComplete } from "@/lib/instance";
import { AppError } from "@/lib/errors";
import { makeInstance } from "./support/instance";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));
function instance() {
  const t = makeInstance();
  cleanups.push(t.cleanup);
  return t.inst;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof AppError ? `${e.status} ${e.code}` : String(e);
  }
  return undefined;
}

describe("setup state", () => {
  it("makes a setup code while pending, stored 0600, stable across restarts", () => {
    const inst = instance();
    const code = ensureSetupCode(inst, {})!;
    expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect((fs.statSync(inst.paths.setupToken).mode & 0o777).toString(8)).toBe("600");
    expect(ensureSetupCode(inst, {})).toBe(code);
  });

  it("COFFER_SETUP_TOKEN presets the code", () => {
    const inst = instance();
    expect(ensureSetupCode(inst, { COFFER_SETUP_TOKEN: "PRESET-CODE-1234" })).toBe("PRESET-CODE-1234");
    expect(codeOf(() => requireSetupCode(inst, "PRESET-CODE-1234", "10.0.0.1"))).toBeUndefined();
    // Case and dashes do not matter to a person typing it.
    expect(codeOf(() => requireSetupCode(inst, "preset code 1234", "10.0.0.1"))).toBeUndefined();
  });

  it("rejects a wrong code and rate-limits guessing per address", () => {
    const inst = instance();
    ensureSetupCode(inst, {});
    const ip = `198.51.100.${Math.floor(Math.random() * 200)}`;
    for (let i = 0; i < SETUP_CODE_LIMIT.max; i++) expect(codeOf(() => requireSetupCode(inst, "AAAA-AAAA-AAAA", ip))).toBe("401 BAD_SETUP_CODE");
    expect(codeOf(() => requireSetupCode(inst, "AAAA-AAAA-AAAA", ip))).toBe("429 RATE_LIMITED");
    // Another address is not punished for it.
    expect(codeOf(() => requireSetupCode(inst, "AAAA-AAAA-AAAA", "203.0.113.9"))).toBe("401 BAD_SETUP_CODE");
  });

  it("goes pending → complete, retires the code, and answers 403 after", async () => {
    const inst = instance();
    const token = ensureSetupCode(inst, {})!;
    expect(isSetupComplete(inst)).toBe(false);
    const admin = await completeNewSetup(inst, { token, instance_name: "Home", username: "root", password: "0123456789" }, null);
    expect(admin.role).toBe("admin");
    expect(isSetupComplete(inst)).toBe(true);
    expect(fs.existsSync(inst.paths.setupToken)).toBe(false);
    expect(codeOf(() => requireSetupCode(inst, token, null))).toBe("403 SETUP_COMPLETE");
    await expect(
      completeNewSetup(inst, { token, instance_name: "Again", username: "other", password: "0123456789" }, null),
    ).rejects.toMatchObject({ status: 403, code: "SETUP_COMPLETE" });
    expect(ensureSetupCode(inst, { COFFER_SETUP_TOKEN: "X" })).toBeNull();
    const actions = inst.db.prepare("SELECT action FROM audit_log ORDER BY id").pluck().all();
    expect(actions).toContain("setup.complete");
  });

  it("two racing New setups: exactly one wins", async () => {
    const inst = instance();
    const token = ensureSetupCode(inst, {})!;
    const results = await Promise.allSettled([
      completeNewSetup(inst, { token, instance_name: "A", username: "a1", password: "0123456789" }, null),
      completeNewSetup(inst, { token, instance_name: "B", username: "b1", password: "0123456789" }, null),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(inst.db.prepare("SELECT count(*) FROM users").pluck().get()).toBe(1);
  });
});
