import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, tempDataDir, uploadDocument } from "./support/server";

// The data directory on a real tmpfs, filled to the last byte while the production server runs. Mounting needs root (CI runs so).
const probe = fs.mkdtempSync("/tmp/coffer-mount-probe-");
const canMount = process.getuid?.() === 0 && spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]).status === 0;
if (canMount) spawnSync("umount", [probe]);
fs.rmSync(probe, { recursive: true, force: true });

test.skip(!canMount, "needs root, to mount a tmpfs");

test("a full disk: an upload is refused with 507 and a sentence, nothing half-written, and the instance goes on serving", async () => {
  const dataDir = tempDataDir();
  fs.mkdirSync(dataDir, { recursive: true });
  expect(spawnSync("mount", ["-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", dataDir]).status).toBe(0);
  const server = await startServer({ dataDir });
  try {
    await setupInstance(server);
    const cookie = await signInCookie(server, "admin", "admin-password-1");
    const first = await uploadDocument(server, cookie, "before.txt", Buffer.from("uploaded while there was room"));

    const filler = path.join(dataDir, "filler");
    const fd = fs.openSync(filler, "wx");
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(64 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe("ENOSPC");
    } finally {
      fs.closeSync(fd);
    }
    const vaultBefore = fs.readdirSync(path.join(dataDir, "vault"), { recursive: true }).length;

    // On a connection of its own: the server answers before the body has arrived and may close it.
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const r = http.request(`${server.url}/api/documents?name=big.bin`, { method: "POST", agent: false, headers: { cookie, "content-length": String(2 * 1024 * 1024) } }, (out) => {
        let text = "";
        out.on("data", (d) => (text += d));
        out.on("end", () => resolve({ status: out.statusCode!, text }));
      });
      r.on("error", reject);
      r.end(Buffer.alloc(2 * 1024 * 1024, 7));
    });
    const body = JSON.parse(res.text);
    expect(res.status, res.text).toBe(507);
    expect(body.error).toEqual({ code: "INSUFFICIENT_STORAGE", message: expect.stringMatching(/^The server's disk is full, so this could not be saved\. Nothing was changed/) });
    // The server closes a connection whose body is still arriving a second after answering: past that, still up.
    await new Promise((r) => setTimeout(r, 1500));
    expect(server.logs()).not.toMatch(/unexpected error|uncaughtException/);
    expect(fs.readdirSync(path.join(dataDir, "vault"), { recursive: true }).length).toBe(vaultBefore);

    // Still serving: the list, the document, health.
    const list = await fetch(`${server.url}/api/documents`, { headers: { cookie } });
    expect(list.status).toBe(200);
    expect(JSON.stringify(await list.json())).toContain("before.txt");
    const dl = await fetch(`${server.url}/api/documents/${first.id}`, { headers: { cookie } });
    expect(dl.status).toBe(200);
    expect(await dl.text()).toBe("uploaded while there was room");
    expect((await fetch(`${server.url}/api/health`)).status).toBeLessThan(500);

    fs.rmSync(filler);
    await uploadDocument(server, cookie, "after.txt", Buffer.from("room again"));
  } finally {
    await server.stop();
    spawnSync("umount", ["-l", dataDir]);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
