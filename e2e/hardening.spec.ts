import fs from "node:fs";
import path from "node:path";
import http from "node:http";
import net from "node:net";
import { test, expect } from "@playwright/test";
import Database from "better-sqlite3";
import { startServer, setupInstance, signInCookie, signInViaUi, cookiesFor, uploadDocument, SETUP_CODE, type Server } from "./support/server";
import { openInstance, closeInstance } from "../lib/instance";
import { createUser } from "../lib/auth/users";
import { encryptSecret } from "../lib/settings/secrets";
import { readSettingsFile, writeSettingsFile } from "../lib/settings/store";

// Every test here attacks a production server from outside: HTTP, raw sockets, Chromium.
test.describe.configure({ mode: "parallel" });

const MiB = 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Streams `total` bytes at `path` as fast as the server takes them; resolves with the answer's status (or null if the server closed first) and bytes sent. */
function flood(server: Server, urlPath: string, total: number, headers: Record<string, string>): Promise<{ status: number | null; sent: number }> {
  return new Promise((resolve) => {
    const req = http.request(`${server.url}${urlPath}`, { method: "POST", headers });
    let status: number | null = null;
    let sent = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve({ status, sent });
    };
    req.on("response", (res) => {
      status = res.statusCode ?? null;
      res.resume();
      res.on("end", () => {
        req.destroy();
        finish();
      });
    });
    // A server that answers and hangs up makes our next write fail: give its answer a moment to be read.
    req.on("error", () => setTimeout(finish, 500));
    req.on("close", () => setTimeout(finish, 500));
    const chunk = Buffer.alloc(MiB, 0x41);
    const pump = () => {
      while (sent < total && !done) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      if (!done) req.end();
    };
    pump();
  });
}

/** Runs `work` while sampling the server's RSS every 20 ms; the peak. */
async function peakRss<T>(server: Server, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = rssOf(server.proc.pid!);
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(server.proc.pid!))), 20);
  try {
    return { result: await work(), peak };
  } finally {
    clearInterval(timer);
  }
}

async function signInAttempt(server: Server, username: string, password: string, extra: Record<string, string> = {}, cookie = ""): Promise<{ ok: boolean; error: string | null; setCookies: string[] }> {
  const csrf = await fetch(`${server.url}/api/auth/csrf`, { headers: { ...extra, ...(cookie ? { cookie } : {}) } });
  const csrfCookie = csrf.headers.getSetCookie().map((c) => c.split(";")[0]);
  const { csrfToken } = (await csrf.json()) as { csrfToken: string };
  const res = await fetch(`${server.url}/api/auth/callback/credentials`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: [cookie, ...csrfCookie].filter(Boolean).join("; "), ...extra },
    body: new URLSearchParams({ csrfToken, username, password, json: "true" }),
  });
  const setCookies = res.headers.getSetCookie();
  // With json=true next-auth answers {url}; the error rides in its query.
  const location = res.headers.get("location") ?? ((await res.json().catch(() => ({}))) as { url?: string }).url ?? "";
  const error = new URL(location, server.url).searchParams.get("error");
  return { ok: setCookies.some((c) => c.includes("next-auth.session-token=")), error, setCookies };
}

test("an anonymous 400 MiB sign-in body is refused before it is read, and memory stays flat", async () => {
  const server = await startServer();
  try {
    const base = rssOf(server.proc.pid!);
    const { result, peak } = await peakRss(server, async () => [
      // readJson, before setup (anonymous): a chunked JSON body is cut off at its 64 KiB cap.
      await flood(server, "/api/setup/verify", 300 * MiB, { "content-type": "application/json", "transfer-encoding": "chunked" }),
      // Chunked: declares no length, so nothing tells the server when it would end.
      await flood(server, "/api/auth/callback/credentials", 400 * MiB, { "content-type": "application/x-www-form-urlencoded", "transfer-encoding": "chunked" }),
      await flood(server, "/api/auth/callback/credentials", 400 * MiB, { "content-type": "application/x-www-form-urlencoded", "content-length": String(400 * MiB) }),
    ]);
    await setupInstance(server);
    expect(result.map((r) => r.status)).toEqual([413, 411, 413]);
    for (const r of result) expect(r.sent).toBeLessThan(300 * MiB); // the server hung up; it did not swallow it all
    expect(peak).toBeLessThan(250 * MiB);
    expect(peak - base).toBeLessThan(40 * MiB);
    // The sign-in itself still works.
    expect((await signInAttempt(server, "admin", "admin-password-1")).ok).toBe(true);
  } finally {
    await server.stop();
  }
});

test("X-Forwarded-For from a client is ignored: rotating it resets no limit and forges no audit address", async () => {
  const server = await startServer();
  try {
    // The setup code: 10 wrong tries per address, whatever the client claims to be.
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${server.url}/api/setup/verify`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": `203.0.113.${i}`, "x-real-ip": `198.51.100.${i}` },
        body: JSON.stringify({ token: "wrong-code" }),
      });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual([429, 429]);
    const right = await fetch(`${server.url}/api/setup/verify`, { method: "POST", headers: { "content-type": "application/json", "x-forwarded-for": "192.0.2.77" }, body: JSON.stringify({ token: SETUP_CODE }) });
    expect(right.status).toBe(429);
  } finally {
    await server.stop();
  }
  const second = await startServer();
  try {
    await setupInstance(second);
    // Sign-in: 5 wrong passwords per user and address, rotating headers or not.
    const results = [];
    for (let i = 0; i < 7; i++) results.push(await signInAttempt(second, "admin", "wrong-password", { "x-forwarded-for": `203.0.113.${i}` }));
    expect(results.slice(0, 5).every((r) => !r.ok && !/Too many/.test(r.error ?? ""))).toBe(true);
    expect(results.slice(5).every((r) => /Too many failed sign-ins/.test(r.error ?? ""))).toBe(true);
  } finally {
    await second.stop();
  }
  const db = new Database(path.join(second.dataDir, "coffer.db"), { readonly: true });
  const ips = db.prepare("SELECT DISTINCT ip FROM audit_log WHERE action = 'auth.login_failed'").pluck().all();
  db.close();
  expect(ips).toEqual(["127.0.0.1"]);
});

test("X-Forwarded-For is honoured from a trusted proxy only, right-most untrusted entry first", async () => {
  const server = await startServer({ env: { COFFER_TRUSTED_PROXIES: "127.0.0.1/32, ::1" } });
  try {
    await setupInstance(server);
    // The proxy (127.0.0.1) appended the real client; the left entry is whatever the client claimed.
    await signInAttempt(server, "admin", "wrong-password", { "x-forwarded-for": "6.6.6.6, 198.51.100.23" });
    await signInAttempt(server, "admin", "wrong-password", { "x-forwarded-for": "198.51.100.24, 127.0.0.1" });
  } finally {
    await server.stop();
  }
  const db = new Database(path.join(server.dataDir, "coffer.db"), { readonly: true });
  const ips = db.prepare("SELECT ip FROM audit_log WHERE action = 'auth.login_failed' ORDER BY id").pluck().all();
  db.close();
  expect(ips).toEqual(["198.51.100.23", "198.51.100.24"]);
});

test("50 failed sign-ins for admin from strangers do not lock out the admin's own browser", async ({ browser }) => {
  const server = await startServer();
  try {
    await setupInstance(server);
    // The admin's browser signed in here before and signed out.
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await signInViaUi(page, server, "admin", "admin-password-1");
    const device = (await ctx.cookies()).find((c) => c.name === "coffer_device");
    expect(device?.httpOnly).toBe(true);
    await ctx.clearCookies({ name: /next-auth/ });

    // Strangers guess admin's password 50 times, with rotating (ignored) forwarding headers.
    let limited = 0;
    for (let i = 0; i < 50; i++) {
      const r = await signInAttempt(server, "admin", `guess-${i}`, { "x-forwarded-for": `203.0.113.${i}` });
      expect(r.ok).toBe(false);
      if (/Too many/.test(r.error ?? "")) limited++;
    }
    expect(limited).toBeGreaterThan(40);
    // A stranger with the right password is still held off (the lockout is real for unknown clients)...
    expect((await signInAttempt(server, "admin", "admin-password-1")).ok).toBe(false);

    // ...but the admin's own browser signs in.
    await signInViaUi(page, server, "admin", "admin-password-1");
    await expect(page.getByRole("button", { name: /Sign out/ })).toBeVisible();
    await ctx.close();

    // The admin can see the attempts.
    const db = new Database(path.join(server.dataDir, "coffer.db"), { readonly: true });
    const failed = db.prepare("SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'").pluck().get() as number;
    db.close();
    expect(failed).toBeGreaterThanOrEqual(5);
  } finally {
    await server.stop();
  }
});

test("pages and API answers carry security headers; another site cannot frame a signed-in page; no CSP violations", async ({ browser }) => {
  const server = await startServer();
  const framer = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>evil</title><iframe id="f" src="${server.url}/settings/users" width="800" height="600"></iframe>`);
  });
  await new Promise<void>((r) => framer.listen(0, "127.0.0.1", r));
  try {
    await setupInstance(server);
    const cookie = await signInCookie(server, "admin", "admin-password-1");
    for (const p of ["/login", "/settings/users", "/api/health", "/api/documents", "/favicon.svg"]) {
      const res = await fetch(`${server.url}${p}`, { headers: { cookie } });
      const h = res.headers;
      expect(h.get("content-security-policy"), p).toContain("frame-ancestors 'none'");
      expect(h.get("x-frame-options"), p).toBe("DENY");
      expect(h.get("x-content-type-options"), p).toBe("nosniff");
      expect(h.get("referrer-policy"), p).toBe("same-origin");
      expect(h.get("permissions-policy"), p).toContain("camera=()");
    }
    // A stored backup's download, too.
    expect((await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } })).status).toBe(201);
    const list = (await (await fetch(`${server.url}/api/settings/backup/files`, { headers: { cookie } })).json()) as { backups: { name: string }[] };
    const dl = await fetch(`${server.url}/api/settings/backup/files/${list.backups[0].name}`, { headers: { cookie } });
    expect(dl.status).toBe(200);
    expect(dl.headers.get("x-content-type-options")).toBe("nosniff");
    await dl.body?.cancel();

    const ctx = await browser.newContext();
    await ctx.addCookies(cookiesFor(server, cookie));
    const page = await ctx.newPage();
    const violations: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    // The app works under its own policy.
    for (const p of ["/", "/settings/backup", "/settings/backup/schedule", "/settings/backup/encryption", "/settings/backup/offsite", "/settings/backup/proof", "/settings/users", "/settings/health"]) {
      await page.goto(`${server.url}${p}`);
      await page.waitForLoadState("networkidle");
    }
    await page.goto(`${server.url}/`);
    await expect(page.getByRole("button", { name: /Sign out/ })).toBeVisible();
    expect(violations.filter((v) => !/frame-ancestors/.test(v))).toEqual([]);

    // Framed from another origin (another port on the same host), the signed-in Users page stays blank.
    await page.goto(`http://127.0.0.1:${(framer.address() as net.AddressInfo).port}/`);
    await page.waitForTimeout(1500);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    const text = frame ? await frame.evaluate(() => document.body?.innerText ?? "").catch(() => "") : "";
    expect(text).not.toContain("Reset password");
    expect(text).not.toContain("Users");
    await ctx.close();
  } finally {
    framer.close();
    await server.stop();
  }
});

test("a webhook URL with credentials and a token is never shown or logged", async ({ browser }) => {
  const server = await startServer();
  const secret = "pa55-Sekr1t";
  const token = "T0KEN-abc123xyz";
  const webhook = `http://hookuser:${secret}@127.0.0.1:9/hooks/${token}?key=${token}`;
  try {
    await setupInstance(server);
    const inst = openInstance(server.dataDir);
    const settings = readSettingsFile(inst.paths.settings);
    settings.backup.notify.webhook_url = encryptSecret(inst.configKey, webhook);
    writeSettingsFile(inst.paths.settings, settings);
    closeInstance(inst);
    const cookie = await signInCookie(server, "admin", "admin-password-1");
    const ctx = await browser.newContext();
    await ctx.addCookies(cookiesFor(server, cookie));
    const page = await ctx.newPage();
    const bodies: string[] = [];
    page.on("response", async (r) => bodies.push(await r.text().catch(() => "")));
    await page.goto(`${server.url}/settings/backup/proof`);
    await page.getByRole("button", { name: "Send test alert" }).click();
    await expect(page.getByText(/The test alert was not delivered/)).toBeVisible({ timeout: 20_000 });
    bodies.push(await page.content());
    await ctx.close();
    const everything = bodies.join("\n") + server.logs();
    expect(everything).toContain("127.0.0.1:9/…"); // the masked form is shown
    for (const s of [secret, token, "hookuser"]) expect(everything).not.toContain(s);
  } finally {
    await server.stop();
  }
});

test("uploads whose connection dies at any moment leave nothing in .tmp", async () => {
  const server = await startServer();
  try {
    await setupInstance(server);
    const cookie = await signInCookie(server, "admin", "admin-password-1");
    for (let i = 0; i < 120; i++) {
      await new Promise<void>((resolve) => {
        const sock = net.connect(server.port, "127.0.0.1", () => {
          sock.write(`POST /api/documents?name=cut-${i}.bin HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nCookie: ${cookie}\r\nContent-Length: 1000000\r\n\r\n`);
          // Die before, during or well into the body.
          if (i % 4 !== 0) sock.write(Buffer.alloc((i % 7) * 20_000, 1));
          setTimeout(() => sock.destroy(), i % 5 === 0 ? 0 : (i % 3) * 15);
        });
        sock.on("close", () => resolve());
        sock.on("error", () => {});
      });
    }
    // Each cut upload's handler notices and cleans up (the request's signal fires when its socket closes).
    const tmp = path.join(server.dataDir, ".tmp");
    await expect.poll(() => fs.readdirSync(tmp), { timeout: 10_000 }).toEqual([]);
    // And the server still takes uploads, having had no error to report (a double close of a file once brought it down).
    await uploadDocument(server, cookie, "after.txt", Buffer.from("still fine"));
    expect(server.logs()).not.toMatch(/unexpected error|EBADF/);
  } finally {
    await server.stop();
  }
});

test("staged restores are bounded: a fourth is 429 TOO_MANY_STAGED naming when the oldest expires; an admin's own older one makes way", async () => {
  const server = await startServer();
  try {
    await setupInstance(server);
    const cookie = await signInCookie(server, "admin", "admin-password-1");
    await uploadDocument(server, cookie, "a.txt", Buffer.from("a"));
    const archive = Buffer.from(await (await fetch(`${server.url}/api/backup/download?scope=db`, { headers: { cookie } })).arrayBuffer());
    const inst = openInstance(server.dataDir);
    await createUser(inst, { id: 1, name: "admin", ip: null }, { username: "second", password: "second-password-1", role: "admin" });
    closeInstance(inst);
    const other = await signInCookie(server, "second", "second-password-1");
    const stage = (c: string) => fetch(`${server.url}/api/settings/backup/restore`, { method: "POST", headers: { cookie: c, "content-type": "application/gzip" }, body: new Uint8Array(archive) });
    for (let i = 0; i < 3; i++) expect((await stage(cookie)).status).toBe(201);
    const refused = await stage(other);
    expect(refused.status).toBe(429);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("TOO_MANY_STAGED");
    expect(body.error.message).toMatch(/oldest expires at \d\d:\d\d UTC/);
    // The first admin uploading again replaces their own oldest.
    expect((await stage(cookie)).status).toBe(201);
    expect(fs.readdirSync(path.join(server.dataDir, ".staging"))).toHaveLength(3);
  } finally {
    await server.stop();
  }
});

test("signing out ends the session on the server: a copied token is 401 afterwards; the user's other sessions go on", async () => {
  const server = await startServer();
  try {
    await setupInstance(server);
    const copied = await signInCookie(server, "admin", "admin-password-1");
    const other = await signInCookie(server, "admin", "admin-password-1");
    expect((await fetch(`${server.url}/api/documents`, { headers: { cookie: copied } })).status).toBe(200);
    const csrf = await fetch(`${server.url}/api/auth/csrf`, { headers: { cookie: copied } });
    const { csrfToken } = (await csrf.json()) as { csrfToken: string };
    const csrfCookie = csrf.headers.getSetCookie().map((c) => c.split(";")[0]);
    const out = await fetch(`${server.url}/api/auth/signout`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: [copied, ...csrfCookie].join("; ") },
      body: new URLSearchParams({ csrfToken, json: "true" }),
    });
    expect(out.status).toBeLessThan(400);
    expect((await fetch(`${server.url}/api/documents`, { headers: { cookie: copied } })).status).toBe(401);
    expect((await fetch(`${server.url}/api/documents`, { headers: { cookie: other } })).status).toBe(200);
  } finally {
    await server.stop();
  }
});

test("every file and folder Coffer writes is private to its user, through a backup and a restore, whatever the umask", async () => {
  const server = await startServer({ env: { UMASK_NOTE: "the harness runs with the default umask 022" } });
  try {
    await setupInstance(server);
    const cookie = await signInCookie(server, "admin", "admin-password-1");
    await uploadDocument(server, cookie, "private.txt", Buffer.from("nobody else reads this"));
    expect((await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } })).status).toBe(201);
    const archive = Buffer.from(await (await fetch(`${server.url}/api/backup/download?scope=full`, { headers: { cookie } })).arrayBuffer());
    const staged = (await (await fetch(`${server.url}/api/settings/backup/restore`, { method: "POST", headers: { cookie }, body: new Uint8Array(archive) })).json()) as { id: string };
    const applied = await fetch(`${server.url}/api/restore/${staged.id}/apply`, { method: "POST", headers: { cookie, "content-type": "application/json" }, body: JSON.stringify({ password: "admin-password-1" }) });
    expect(applied.status).toBe(200);
    const open: string[] = [];
    const walk = (p: string) => {
      const st = fs.lstatSync(p);
      if (st.mode & 0o077) open.push(`${path.relative(server.dataDir, p) || "."} ${(st.mode & 0o777).toString(8)}`);
      if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    };
    walk(server.dataDir);
    expect(open).toEqual([]);
  } finally {
    await server.stop();
  }
});

test("document names lose bidi and zero-width tricks and are cut on code points; bad %-escapes are 400", async () => {
  const server = await startServer();
  try {
    await setupInstance(server);
    const cookie = await signInCookie(server, "admin", "admin-password-1");
    const post = async (name: string) => {
      const res = await fetch(`${server.url}/api/documents?name=${encodeURIComponent(name)}`, { method: "POST", headers: { cookie }, body: "x" });
      expect(res.status).toBe(201);
      return ((await res.json()) as { name: string }).name;
    };
    expect(await post("invoice\u202Efdp.exe")).toBe("invoicefdp.exe");
    expect(await post("pay\u200Bpal\u2066.pdf\u2069\uFEFF")).toBe("paypal.pdf");
    const long = await post("a" + "😀".repeat(300));
    expect([...long]).toHaveLength(255);
    expect(Buffer.from(long, "utf8").toString("utf8")).toBe(long); // no lone surrogate to mangle
    expect(long.endsWith("😀")).toBe(true);
    for (const p of ["/api/documents/%E0%A4%A", "/api/settings/backup/files/%zz", "/documents/%"]) {
      const res = await fetch(`${server.url}${p}`, { headers: { cookie } });
      expect(res.status, p).toBe(400);
    }
  } finally {
    await server.stop();
  }
});

test("before the page is live, the sign-in and setup-code forms cannot be sent by the browser (no password or code in a URL)", async ({ browser }) => {
  const s = await startServer();
  try {
    const ctx = await browser.newContext({ javaScriptEnabled: false });
    const page = await ctx.newPage();
    await page.goto(`${s.url}/setup`);
    await page.getByLabel("Setup code").fill(SETUP_CODE);
    await expect(page.getByRole("button", { name: "Continue" })).toBeDisabled();
    await page.getByLabel("Setup code").press("Enter"); // implicit submission: none while the button is disabled
    expect(page.url()).not.toContain(SETUP_CODE);
    await setupInstance(s);
    await page.goto(`${s.url}/login`);
    await page.getByLabel("Password").fill("admin-password-1");
    await expect(page.getByRole("button", { name: "Sign in" })).toBeDisabled();
    await page.getByLabel("Password").press("Enter");
    expect(page.url()).not.toContain("admin-password-1");
    await ctx.close();
  } finally {
    await s.stop();
  }
});
