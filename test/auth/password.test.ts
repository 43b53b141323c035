import crypto from "node:crypto";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hashPassword, verifyPassword } from "@/lib/auth/password";
import { verifyLogin } from "@/lib/auth/users";
import { makeSetUpInstance } from "../support/instance";

describe("password hashing", () => {
  it("verifies the right password and rejects a wrong one", async () => {
    const h = await hashPassword("correct horse battery");
    expect(h.startsWith("scrypt$")).toBe(true);
    expect(await verifyPassword("correct horse battery", h)).toBe(true);
    expect(await verifyPassword("correct horse batterx", h)).toBe(false);
  });

  it("salts every hash", async () => {
    const [a, b] = await Promise.all([hashPassword("same password"), hashPassword("same password")]);
    expect(a).not.toBe(b);
    expect(await verifyPassword("same password", a)).toBe(true);
    expect(await verifyPassword("same password", b)).toBe(true);
  });

  it("treats a malformed stored hash as a mismatch, not an error", async () => {
    expect(await verifyPassword("x", "")).toBe(false);
    expect(await verifyPassword("x", "bcrypt$whatever")).toBe(false);
  });
});

describe("a stored hash from outside (a restored database)", () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));

  /** The admin's row as a hostile backup would bring it: scrypt parameters of its choosing. */
  async function withStoredHash(hash: string) {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    // Written through a second connection to the data dir's SQLite file, as a restore swaps one in.
    const db = new Database(t.inst.paths.db);
    db.prepare("UPDATE users SET password_hash = ? WHERE username = 'admin'").run(hash);
    db.close();
    return t;
  }
  const crafted = (n: number, r: number, p: number, password = "admin-password-1") => {
    const salt = crypto.randomBytes(16);
    // Only the header matters for the refusal; the hash of a huge N is not computed here.
    const key = n * r <= 2 ** 18 && (n & (n - 1)) === 0 && p <= 4 ? crypto.scryptSync(password, salt, 32, { N: n, r, p, maxmem: 2 ** 28 }) : crypto.randomBytes(32);
    return ["scrypt", n, r, p, salt.toString("base64"), key.toString("base64")].join("$");
  };

  it("one asking for gigabytes (N=2^20, r=8: 1 GiB) fails the sign-in at once with a logged reason, and allocates nothing", async () => {
    const { inst } = await withStoredHash(crafted(2 ** 20, 8, 1));
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const rss = process.memoryUsage().rss;
    const started = performance.now();
    const r = await verifyLogin(inst, "admin", "admin-password-1", "10.0.0.1");
    expect(r).toMatchObject({ ok: false, code: "INVALID" });
    expect(performance.now() - started).toBeLessThan(300);
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 2 ** 20);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("would take 1024 MiB (at most 32 MiB)"));
    warn.mockRestore();
  });

  it.each([
    ["p=1000 (minutes of work)", 16384, 8, 1000, "p=1000"],
    ["N that is not a power of two", 3, 8, 1, "not a power of two"],
    ["r=64", 1024, 64, 1, "r=64"],
    ["N written as 1e6", NaN, 8, 1, "not a whole number"],
  ])("%s is refused the same way", async (_what, n, r, p, reason) => {
    const hash = Number.isNaN(n) ? `scrypt$1e6$${r}$${p}$${crypto.randomBytes(16).toString("base64")}$${crypto.randomBytes(32).toString("base64")}` : crafted(n, r, p);
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    expect(await verifyPassword("admin-password-1", hash)).toBe(false);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining(reason));
    warn.mockRestore();
  });

  it("the parameters Coffer writes, and a little more, still sign in", async () => {
    expect(await verifyPassword("admin-password-1", crafted(32768, 8, 1))).toBe(true);
    expect((await verifyLogin((await withStoredHash(await hashPassword("admin-password-1"))).inst, "admin", "admin-password-1", "10.0.0.2")).ok).toBe(true);
    expect((await verifyLogin((await withStoredHash(crafted(32768, 8, 1))).inst, "admin", "admin-password-1", "10.0.0.3")).ok).toBe(true);
  });
});
