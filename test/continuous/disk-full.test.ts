import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { makeSetUpInstance } from "../support/instance";
import { until } from "../support/until";
import { startWebhook } from "../support/webhook";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import { createDocument, listDocuments } from "@/lib/vault/documents";
import { litestreamBinary } from "@/lib/continuous/litestream";
import { ContinuousSupervisor } from "@/lib/continuous/supervisor";
import { healthReport } from "@/lib/health";
import { diskFullError } from "@/lib/errors";

/**
 * A full disk under the continuous replica: a real tmpfs mounted on the backup directory and filled to
 * the last byte, with the real Litestream replicating onto it. Mounting needs root (as CI runs here);
 * elsewhere the test says it was skipped.
 */
const binary = litestreamBinary();
const probe = fs.mkdtempSync("/tmp/coffer-mount-probe-");
const canMount = process.getuid?.() === 0 && spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]).status === 0;
if (canMount) spawnSync("umount", [probe]);
fs.rmSync(probe, { recursive: true, force: true });
if (!canMount || !binary) console.warn("disk-full.test.ts: SKIPPED: needs root (to mount a tmpfs) and the Litestream binary");

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Write zeros until the disk says no more (ENOSPC); returns that error. */
function fill(file: string): NodeJS.ErrnoException {
  const fd = fs.openSync(file, "wx");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (err) {
    return err as NodeJS.ErrnoException;
  } finally {
    fs.closeSync(fd);
  }
}

describe.skipIf(!canMount || !binary)("continuous protection on a full disk", () => {
  it("says so in health, in the log and to the webhook once, keeps serving, and says when there is room again", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const backups = t.inst.paths.backups;
    fs.mkdirSync(backups, { recursive: true });
    expect(spawnSync("mount", ["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", backups]).status).toBe(0);
    cleanups.push(() => spawnSync("umount", ["-l", backups]));
    const hook = await startWebhook();
    cleanups.push(hook.close);
    const s = currentSettings(t.inst.paths.settings);
    saveSettings(t.inst.paths.settings, {
      ...s,
      backup: { ...s.backup, notify: { webhook_url: encryptSecret(t.inst.configKey, hook.url) }, continuous: { ...s.backup.continuous, enabled: true } },
    });

    const lines: string[] = [];
    const sup = new ContinuousSupervisor(() => t.inst, { log: (l) => lines.push(l), alertOptions: { backoffMs: [], timeoutMs: 2000 } });
    cleanups.push(() => sup.stop());
    sup.start(200);
    await until("Litestream to start", () => sup.status().running);
    await until("a first snapshot in the replica", () => fs.existsSync(path.join(backups, "continuous", "generations")));
    expect(healthReport(t.inst).reasons.map((r) => r.code)).not.toContain("CONTINUOUS_DISK_FULL");

    const filler = path.join(backups, "filler");
    const enospc = fill(filler);
    expect(enospc.code).toBe("ENOSPC");
    // The same error from a handler is a 507 with a sentence, not a 500.
    expect(diskFullError(enospc)).toMatchObject({ status: 507, code: "INSUFFICIENT_STORAGE", message: expect.stringMatching(/disk is full.*Nothing was changed/) });
    expect(diskFullError(new Error("other"))).toBeNull();

    await until("the disk-full alert", () => hook.received.find((r) => r.event === "continuous.disk_full"), 10_000);
    const reason = healthReport(t.inst).reasons.find((r) => r.code === "CONTINUOUS_DISK_FULL");
    expect(reason?.message).toMatch(/The disk holding the continuous replica .* is full: 0\.0 MiB free of 24 MiB\. New changes are not being kept/);
    expect(lines.join("\n")).toMatch(/continuous protection: The disk holding the continuous replica/);

    // The app goes on serving: the vault is on another disk, so uploads and listing still work.
    const doc = await createDocument(t.inst, t.admin, null, { name: "after.txt", body: Readable.from([Buffer.from("written while the replica's disk is full")]), maxBytes: 1e6 });
    expect(listDocuments(t.inst, t.admin).map((d) => d.id)).toContain(doc.id);
    await new Promise((r) => setTimeout(r, 1000));
    expect(hook.received.filter((r) => r.event === "continuous.disk_full")).toHaveLength(1); // once, not every tick

    fs.rmSync(filler);
    await until("the log to say there is room again", () => lines.some((l) => /has room again/.test(l)), 10_000);
    expect(healthReport(t.inst).reasons.map((r) => r.code)).not.toContain("CONTINUOUS_DISK_FULL");
  }, 60_000);
});
