// A bucket that stops sending, met from outside: the wizard's restore over HTTP against the production build.
// The transfer must end when the browser leaves (the request's signal reaches the bucket reads), or when
// the store sends nothing for COFFER_OFFSITE_STALL_MS; either way staging is emptied and the instance unchanged.
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, uploadDocument, SETUP_CODE, type Server } from "./support/server";
import { startS3 } from "./support/s3";
import { startFaultProxy } from "../test/support/fault-proxy";
import { currentSettings, saveSettings } from "../lib/settings/store";
import { encryptSecret } from "../lib/settings/secrets";

const staged = (server: Server) => fs.readdirSync(path.join(server.dataDir, ".staging")).filter((n) => !n.startsWith("."));

test("a bucket that stops sending: the wizard's restore stops when the browser leaves, or after the stall limit, and leaves nothing staged", async () => {
  test.setTimeout(120_000);
  const s3 = await startS3();
  const servers: Server[] = [];
  const proxy = await startFaultProxy(s3.endpoint, { mode: "pass" });
  try {
    // An instance with two documents and one snapshot in the bucket.
    let a = await startServer();
    servers.push(a);
    await setupInstance(a);
    let cookie = await signInCookie(a, "admin", "admin-password-1");
    for (const name of ["a.bin", "b.bin"]) await uploadDocument(a, cookie, name, crypto.randomBytes(200_000));
    await a.stop();
    const settingsFile = path.join(a.dataDir, "settings.yaml");
    const configKey = fs.readFileSync(path.join(a.dataDir, "keys", "config.key"));
    const s = currentSettings(settingsFile);
    saveSettings(settingsFile, {
      ...s,
      backup: {
        ...s.backup,
        offsite: { enabled: true, endpoint: s3.endpoint, region: "us-east-1", bucket: s3.bucket, prefix: "stall", path_style: true, access_key_id: "S3RVER", secret_access_key: encryptSecret(configKey, "S3RVER"), checksum_compat: true },
      },
    });
    a = await startServer({ dataDir: a.dataDir });
    servers.push(a);
    cookie = await signInCookie(a, "admin", "admin-password-1");
    const run = await fetch(`${a.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } });
    expect(run.status).toBe(201);
    expect((await run.json()).offsite).toMatchObject({ ok: true });
    await a.stop();

    const connection = { endpoint: proxy.endpoint, bucket: s3.bucket, prefix: "stall", access_key_id: "S3RVER", secret_access_key: "S3RVER" };
    const restore = (server: Server, signal?: AbortSignal) =>
      fetch(`${server.url}/api/setup/offsite/restore`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-setup-token": SETUP_CODE },
        body: JSON.stringify({ connection }),
        signal,
      });

    // The browser leaves while a blob is stalled: the bucket's connections close at once, staging empties.
    const b = await startServer();
    servers.push(b);
    proxy.failNext("stall", (req) => req.method === "GET" && /\/blobs\//.test(req.url ?? ""), 100);
    const leave = new AbortController();
    const pending = restore(b, leave.signal).catch((e: unknown) => e);
    await expect.poll(() => proxy.stalledOpen(), { timeout: 15_000 }).toBeGreaterThan(0);
    leave.abort();
    await pending;
    await expect.poll(() => proxy.stalledOpen(), { timeout: 5_000 }).toBe(0);
    await expect.poll(() => staged(b), { timeout: 5_000 }).toEqual([]);
    expect((await (await fetch(`${b.url}/api/health`)).json()).setup).toBe("required");
    await b.stop();

    // Nobody leaves, the store just stops: 504 OFFSITE_STALLED after the limit, a sentence, nothing staged.
    const c = await startServer({ env: { COFFER_OFFSITE_STALL_MS: "1500" } });
    servers.push(c);
    proxy.failNext("stall", (req) => req.method === "GET" && /\/blobs\//.test(req.url ?? ""), 100);
    const t0 = Date.now();
    const res = await restore(c);
    expect(res.status).toBe(504);
    const body = await res.json();
    expect(body.error.code).toBe("OFFSITE_STALLED");
    expect(body.error.message).toMatch(/stopped sending .* given up/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(staged(c)).toEqual([]);
  } finally {
    for (const s of servers) await s.stop().catch(() => {});
    await proxy.close();
    await s3.close();
  }
});
