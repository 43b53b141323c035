import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { removeWorkDir } from "@/lib/backup/workdir";

const MiB = 1024 * 1024;
const cleanups: string[] = [];
afterEach(() => cleanups.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-workdir-"));
  cleanups.push(d);
  return d;
}

const sizeOr0 = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);

describe("removeWorkDir", () => {
  it("cuts large files down 16 MiB at a time, giving way after each cut, then removes the folder", async () => {
    const dir = path.join(tempDir(), "job");
    const snapshot = path.join(dir, "coffer.db");
    const nested = path.join(dir, "instance", "coffer.db");
    fs.mkdirSync(path.join(dir, "instance", "vault"), { recursive: true });
    fs.writeFileSync(snapshot, Buffer.alloc(40 * MiB, 1)); // cut to 24, then 8 MiB
    fs.writeFileSync(nested, Buffer.alloc(20 * MiB, 2)); // cut to 4 MiB
    fs.writeFileSync(path.join(dir, "instance", "vault", "small"), "x"); // not cut
    const totals: number[] = [];
    await removeWorkDir(dir, async () => {
      totals.push((sizeOr0(snapshot) + sizeOr0(nested)) / MiB);
    });
    expect(totals).toEqual([44, 28, 12]);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it("follows no link: a file a link points to is neither cut nor removed", async () => {
    const root = tempDir();
    const outside = path.join(root, "keep.bin");
    fs.writeFileSync(outside, Buffer.alloc(40 * MiB, 3));
    const dir = path.join(root, "job");
    fs.mkdirSync(dir);
    fs.symlinkSync(outside, path.join(dir, "coffer.db"));
    let gaveWay = 0;
    await removeWorkDir(dir, async () => void gaveWay++);
    expect(gaveWay).toBe(0);
    expect(fs.statSync(outside).size).toBe(40 * MiB);
    expect(fs.existsSync(dir)).toBe(false);
  });
});
