import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { tryAcquireLease } from "@/lib/backup/lease";
import { makeInstance } from "./support/instance";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

describe("lease", () => {
  it("one holder at a time; expiry lets another take over, and the old holder can no longer finalize", () => {
    const t = makeInstance();
    cleanups.push(t.cleanup);
    let now = 1_000_000;
    const clock = () => now;
    const a = tryAcquireLease(t.inst.db, "job", 1000, clock)!;
    expect(a.held()).toBe(true);
    expect(tryAcquireLease(t.inst.db, "job", 1000, clock)).toBeNull();
    now += 500;
    expect(a.renew()).toBe(true);
    now += 1500; // a stopped renewing: expired
    const b = tryAcquireLease(t.inst.db, "job", 1000, clock)!;
    expect(b).not.toBeNull();
    expect(a.held()).toBe(false);
    expect(a.renew()).toBe(false);
    a.release(); // releasing a lost lease does not free b's
    expect(b.held()).toBe(true);
  });

  it("a lease whose holder process is gone is taken over at once", () => {
    const t = makeInstance();
    cleanups.push(t.cleanup);
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    t.inst.db.prepare("INSERT INTO leases (name, holder, expires_at) VALUES ('job', ?, ?)").run(`${dead}:deadbeef`, Date.now() + 60_000);
    expect(tryAcquireLease(t.inst.db, "job", 1000)).not.toBeNull();
  });
});
