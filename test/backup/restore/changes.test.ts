import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { makeInstance, makeSetUpInstance } from "../../support/instance";
import { writeArchive } from "@/lib/backup/format/writer";
import { stageArchive } from "@/lib/backup/restore/staging";
import { describeChanges } from "@/lib/backup/restore/changes-words";
import { createDocument, deleteDocument } from "@/lib/vault/documents";
import { emptyTrash, restoreFromTrash } from "@/lib/vault/trash";
import { createUser, removeUser } from "@/lib/auth/users";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import type { Instance } from "@/lib/instance";

/** The restore preview's comparison with now, on real instances, real archives and real SQLite. */

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const body = (s: string) => Readable.from([Buffer.from(s)]);

function changeSettings(inst: Instance, change: (s: ReturnType<typeof currentSettings>) => ReturnType<typeof currentSettings>): void {
  saveSettings(inst.paths.settings, change(currentSettings(inst.paths.settings)));
}
const withWebhook = (inst: Instance) =>
  changeSettings(inst, (s) => ({ ...s, backup: { ...s.backup, notify: { webhook_url: encryptSecret(inst.configKey, "https://hooks.example/coffer") } } }));

describe("the restore preview says what differs from now", () => {
  it("documents deleted since come back, documents uploaded since disappear, accounts and settings too", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const doc = (name: string) => createDocument(t.inst, t.admin, null, { name, body: body(`content of ${name}`), maxBytes: 1e6 });
    const olga = await createUser(t.inst, { id: t.admin.id, name: "admin" }, { username: "olga", password: "olga-password-1", role: "member" });
    await doc("keep.pdf");
    const deletedSince = await doc("deleted-since.pdf");
    const inTrashNow = await doc("in-trash-now.pdf");
    const trashedThen = await doc("trashed-then.pdf");
    deleteDocument(t.inst, t.admin, null, trashedThen.id);
    const last = await doc("last.pdf"); // the highest id: erased later, its id is taken again
    withWebhook(t.inst);
    const archive = path.join(t.dir, "then.tar.gz");
    await writeArchive(t.inst, fs.createWriteStream(archive), { scope: "full", trigger: "manual" });

    // Since the backup:
    restoreFromTrash(t.inst, t.admin, null, trashedThen.id); // live now, in the backup's trash
    deleteDocument(t.inst, t.admin, null, deletedSince.id);
    deleteDocument(t.inst, t.admin, null, last.id);
    expect(emptyTrash(t.inst, t.admin, null)).toBe(2); // deleted-since and last: erased
    const reused = await doc("reused-id.pdf");
    expect(reused.id).toBe(last.id); // SQLite gives the erased highest id again: same id, other content
    deleteDocument(t.inst, t.admin, null, inTrashNow.id);
    for (let i = 0; i < 25; i++) await doc(`new-${String(i).padStart(2, "0")}.pdf`);
    removeUser(t.inst, { id: t.admin.id, name: "admin" }, olga.id);
    await createUser(t.inst, { id: t.admin.id, name: "admin" }, { username: "newbie", password: "newbie-password-1", role: "member" });
    changeSettings(t.inst, (s) => ({ ...s, trash: { retention_days: 3 }, backup: { ...s.backup, schedule: "hourly" } }));
    withWebhook(t.inst); // the same secret encrypted again (a fresh IV): not a difference

    const preview = await stageArchive(t.inst, fs.createReadStream(archive));
    const c = preview.changes!;
    expect(c.compared_at).toBe(preview.staged_at);
    expect(c.documents.come_back).toEqual({ count: 3, names: ["last.pdf", "in-trash-now.pdf", "deleted-since.pdf"] });
    expect(c.documents.disappear.count).toBe(27); // 25 new, reused-id.pdf, trashed-then.pdf out of the trash
    expect(c.documents.disappear.names).toHaveLength(20); // a bounded sample, newest first
    expect(c.documents.disappear.names.slice(0, 2)).toEqual(["new-24.pdf", "new-23.pdf"]);
    expect(c.users).toEqual({ added: { count: 1, names: ["olga"] }, removed: { count: 1, names: ["newbie"] } });
    expect(c.settings).toEqual({ differ: true, sections: ["backup.schedule", "trash.retention_days"] });
    expect(c.keys_differ).toBe(false);

    const words = describeChanges(c);
    expect(words).toContain("3 documents would come back (deleted since, or in the trash now): last.pdf, in-trash-now.pdf, deleted-since.pdf.");
    expect(words.find((w) => w.startsWith("27 documents here now would disappear"))).toMatch(/: new-24\.pdf, new-23\.pdf, .* and 7 more\.$/);
    expect(words).toContain("1 account would come back or be added: olga.");
    expect(words).toContain("1 account here now would be removed: newbie.");
    expect(words).toContain("Settings differ from today's in backup.schedule, trash.retention_days: the backup's replace them.");
  });

  it("the instance's own fresh backup: nothing differs; a fresh server in the wizard has nothing to compare", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    await createDocument(t.inst, t.admin, null, { name: "a.pdf", body: body("a"), maxBytes: 1e6 });
    const archive = path.join(t.dir, "now.tar.gz");
    await writeArchive(t.inst, fs.createWriteStream(archive), { scope: "full", trigger: "manual" });
    const same = await stageArchive(t.inst, fs.createReadStream(archive));
    expect(same.changes).toMatchObject({ documents: { disappear: { count: 0, names: [] }, come_back: { count: 0, names: [] } }, users: { added: { count: 0 }, removed: { count: 0 } }, settings: { differ: false }, keys_differ: false });
    expect(describeChanges(same.changes!)).toEqual(["Documents, accounts and settings are the same as now."]);

    const fresh = makeInstance();
    cleanups.push(fresh.cleanup);
    const staged = await stageArchive(fresh.inst, fs.createReadStream(archive));
    expect(staged.changes).toBeNull();
  });

  it("a backup from a release without the trash (schema 2) is compared too", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const golden = path.join(__dirname, "..", "..", "fixtures", "golden", "0.1.0-schema2");
    const expected = JSON.parse(fs.readFileSync(path.join(golden, "expected.json"), "utf8")) as { documents: { name: string }[] };
    const file = fs.readdirSync(golden).find((f) => f.startsWith("coffer_full_"))!;
    const preview = await stageArchive(t.inst, fs.createReadStream(path.join(golden, file)));
    expect(preview.changes!.documents.come_back.count).toBe(expected.documents.length);
    expect(preview.changes!.users.added.names).toContain("golden-admin");
    expect(preview.changes!.users.removed.names).toEqual(["admin", "mia"]);
    expect(preview.changes!.keys_differ).toBe(true); // another installation's keys
  });
});
