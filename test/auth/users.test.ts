import { afterEach, describe, expect, it } from "vitest";
import { verifyLogin, removeUser, resetPassword, getUser, LOGIN_LIMIT } from "@/lib/auth/users";
import { listDocuments, getDocumentFor, createDocument, deleteDocument } from "@/lib/vault/documents";
import { Readable } from "node:stream";
import { makeSetUpInstance } from "../support/instance";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));
async function setUp() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  return t;
}
const body = (s: string) => Readable.from([Buffer.from(s)]);

describe("sign-in", () => {
  it("accepts the right password, audits failures, and rate-limits a username+address", async () => {
    const { inst } = await setUp();
    expect((await verifyLogin(inst, "mia", "member-password-1", "10.1.1.1")).ok).toBe(true);
    const ip = "10.9.9.9";
    for (let i = 0; i < LOGIN_LIMIT.max; i++) {
      expect(await verifyLogin(inst, "mia", "nope-nope-nope", ip)).toMatchObject({ ok: false, code: "INVALID" });
    }
    const limited = await verifyLogin(inst, "mia", "member-password-1", ip);
    expect(limited).toMatchObject({ ok: false, code: "RATE_LIMITED" });
    expect((limited as { message: string }).message).toMatch(/Try again in/);
    const failed = inst.db.prepare("SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'").pluck().get();
    expect(failed).toBe(LOGIN_LIMIT.max);
  });

  it("unknown usernames fail the same way as wrong passwords", async () => {
    const { inst } = await setUp();
    expect(await verifyLogin(inst, "ghost", "whatever-123", "10.2.2.2")).toMatchObject({ ok: false, code: "INVALID" });
  });

  it("a password reset ends the user's sessions (session_version)", async () => {
    const { inst, admin, member } = await setUp();
    const before = getUser(inst, member.id)!.session_version;
    await resetPassword(inst, { id: admin.id, name: admin.username }, member.id, "brand-new-password");
    expect(getUser(inst, member.id)!.session_version).toBe(before + 1);
    expect((await verifyLogin(inst, "mia", "brand-new-password", "10.3.3.3")).ok).toBe(true);
  });
});

describe("role guards on documents", () => {
  it("a member sees only their own; an admin sees all; others' ids are 404", async () => {
    const { inst, admin, member } = await setUp();
    const mine = await createDocument(inst, member, null, { name: "m.txt", body: body("member"), maxBytes: 1e6 });
    const theirs = await createDocument(inst, admin, null, { name: "a.txt", body: body("admin"), maxBytes: 1e6 });
    expect(listDocuments(inst, member).map((d) => d.id)).toEqual([mine.id]);
    expect(listDocuments(inst, admin).map((d) => d.id).sort()).toEqual([mine.id, theirs.id].sort());
    expect(() => getDocumentFor(inst, member, theirs.id)).toThrow(expect.objectContaining({ status: 404 }));
    expect(() => deleteDocument(inst, member, null, theirs.id)).toThrow(expect.objectContaining({ status: 404 }));
    expect(getDocumentFor(inst, admin, mine.id).owner).toBe("mia");
  });

  it("removing a member hands their documents to the admin; admins and self cannot be removed", async () => {
    const { inst, admin, member } = await setUp();
    await createDocument(inst, member, null, { name: "keep.txt", body: body("keep me"), maxBytes: 1e6 });
    const actor = { id: admin.id, name: admin.username };
    expect(() => removeUser(inst, actor, admin.id)).toThrow(expect.objectContaining({ code: "CANNOT_REMOVE_SELF" }));
    expect(removeUser(inst, actor, member.id)).toEqual({ movedDocuments: 1 });
    expect(listDocuments(inst, admin).map((d) => [d.name, d.owner])).toEqual([["keep.txt", "admin"]]);
    expect(getUser(inst, admin.id)!.used_bytes).toBe(7);
  });
});
