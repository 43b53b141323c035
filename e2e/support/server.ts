import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import net from "node:net";

export const SETUP_CODE = "TEST-CODE-2026";

export interface Server {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  logs: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

export function tempDataDir(): string {
  // Inside the run's own folder (global-setup.ts), which goes when the run ends.
  return path.join(fs.mkdtempSync(path.join(process.env.COFFER_E2E_ROOT ?? os.tmpdir(), "coffer-e2e-")), "data");
}

/**
 * The production build (`next build` ran before the tests) on a port of its
 * own, with its own data dir. Resolves once /api/health answers.
 */
export async function startServer(opts: { dataDir?: string; env?: Record<string, string>; waitForHealth?: boolean } = {}): Promise<Server> {
  const port = await freePort();
  const dataDir = opts.dataDir ?? tempDataDir();
  let out = "";
  // As npm start runs it (serverEnv in scripts/run.mjs): --expose-gc, a small young generation, two malloc arenas, eight libuv threads.
  const proc = spawn(process.execPath, ["--expose-gc", "--max-semi-space-size=4", "bin/coffer-server.cjs"], {
    cwd: path.resolve(__dirname, "../.."),
    env: {
      ...process.env,
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
      COFFER_DATA_DIR: dataDir,
      COFFER_SETUP_TOKEN: SETUP_CODE,
      PORT: String(port),
      HOST: "127.0.0.1",
      MALLOC_ARENA_MAX: "2",
      UV_THREADPOOL_SIZE: "8",
      ...opts.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  let stopping = false;
  const exited = new Promise<void>((resolve) =>
    proc.once("exit", (code, signal) => {
      // A server that dies on its own is a bug: show why, whatever the test then reports.
      if (!stopping && opts.waitForHealth !== false && !opts.env?.COFFER_TEST_CRASH_AT) console.error(`server on port ${port} exited by itself (${code ?? signal}):\n${out}`);
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const server: Server = {
    url,
    port,
    dataDir,
    proc,
    logs: () => out,
    stop: async (signal = "SIGTERM") => {
      stopping = true;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
  if (opts.waitForHealth === false) return server;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited (${proc.exitCode}):\n${out}`);
    try {
      const res = await fetch(`${url}/api/health`);
      // Ours, not another test's server that got the same port between freePort() and our bind: ours says its address.
      if (res.ok && out.includes(`127.0.0.1:${port}`)) return server;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  await server.stop();
  throw new Error(`server did not come up:\n${out}`);
}

/** New setup over the API, as an unattended install would do it. */
export async function setupInstance(server: Server, admin = { username: "admin", password: "admin-password-1" }) {
  const res = await fetch(`${server.url}/api/setup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: SETUP_CODE, instance_name: "E2E", ...admin }),
  });
  if (res.status !== 201) throw new Error(`setup failed: ${res.status} ${await res.text()}`);
}

/** Signs in the way a script would (next-auth's csrf + credentials callback); returns the Cookie header. */
export async function signInCookie(server: Server, username: string, password: string): Promise<string> {
  const csrfRes = await fetch(`${server.url}/api/auth/csrf`);
  const jar = new Map<string, string>();
  const keep = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
  };
  keep(csrfRes);
  const { csrfToken } = (await csrfRes.json()) as { csrfToken: string };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const res = await fetch(`${server.url}/api/auth/callback/credentials`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookie() },
    body: new URLSearchParams({ csrfToken, username, password, json: "true" }),
  });
  keep(res);
  if (![...jar.keys()].some((k) => k.endsWith("next-auth.session-token"))) throw new Error(`sign-in failed for ${username}`);
  return cookie();
}

/** Cookies from signInCookie, for a browser context. */
export function cookiesFor(server: Server, cookie: string) {
  return cookie.split("; ").map((c) => ({ name: c.slice(0, c.indexOf("=")), value: c.slice(c.indexOf("=") + 1), url: server.url }));
}

/** Adds a user through Settings → Users (the only way in: a server action). */
export async function addUserViaUi(browser: import("@playwright/test").Browser, server: Server, adminCookie: string, username: string, password: string) {
  const ctx = await browser.newContext();
  await ctx.addCookies(cookiesFor(server, adminCookie));
  const page = await ctx.newPage();
  await page.goto(`${server.url}/settings/users`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Add user" }).click();
  await page.getByText(`Added ${username}.`).waitFor();
  await ctx.close();
}

export async function uploadDocument(server: Server, cookie: string, name: string, body: Buffer): Promise<{ id: number; sha256: string }> {
  const res = await fetch(`${server.url}/api/documents?name=${encodeURIComponent(name)}`, { method: "POST", headers: { cookie }, body: new Uint8Array(body) });
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The wizard on a fresh instance: the setup code, then Restore from backup, up to choosing the file. */
export async function openRestoreWizard(page: import("@playwright/test").Page, server: Server): Promise<void> {
  await page.goto(`${server.url}/setup`);
  await page.getByLabel("Setup code").fill(SETUP_CODE);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByRole("button", { name: /Restore from backup/ }).click();
}

/** Signs in through the login page, as a person would; waits until it has left /login. */
export async function signInViaUi(page: import("@playwright/test").Page, server: Server, username: string, password: string): Promise<void> {
  await page.goto(`${server.url}/login`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
}
