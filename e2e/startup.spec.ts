import fs from "node:fs";
import path from "node:path";
import { test, expect } from "@playwright/test";
import { startServer, tempDataDir } from "./support/server";

test("a broken settings file stops start-up with one line naming the file", async () => {
  const dataDir = tempDataDir();
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(path.join(dataDir, "settings.yaml"), "backup:\n  scope: everything\n");
  const server = await startServer({ dataDir, waitForHealth: false });
  const code = await new Promise<number | null>((resolve) => server.proc.once("exit", (c) => resolve(c)));
  expect(code).not.toBe(0);
  const line = server.logs().split("\n").find((l) => l.startsWith("Coffer cannot start:"));
  expect(line).toContain(path.join(dataDir, "settings.yaml"));
  expect(line).toContain("backup.scope");
  expect(server.logs()).not.toMatch(/\n\s+at /); // no stack trace
});

test("a data dir that cannot be created stops start-up with one line", async () => {
  const parent = path.dirname(tempDataDir());
  fs.mkdirSync(parent, { recursive: true });
  fs.writeFileSync(path.join(parent, "file"), "x");
  const server = await startServer({ dataDir: path.join(parent, "file", "data"), waitForHealth: false });
  const code = await new Promise<number | null>((resolve) => server.proc.once("exit", (c) => resolve(c)));
  expect(code).not.toBe(0);
  expect(server.logs()).toMatch(/Coffer cannot start: cannot create directory .*file\/data/);
});

test("a restart on an existing data dir keeps keys and settings and says it is running", async () => {
  const first = await startServer();
  const keys = fs.readFileSync(path.join(first.dataDir, "keys", "secret.key"));
  await first.stop();
  const second = await startServer({ dataDir: first.dataDir });
  expect(fs.readFileSync(path.join(second.dataDir, "keys", "secret.key"))).toEqual(keys);
  expect(second.logs()).toContain("Coffer is not set up yet");
  await second.stop();
});
