import v8 from "node:v8";
import vm from "node:vm";
import { expect, it } from "vitest";

// What npm start gives the server: --expose-gc (lib/util/gc.ts reads globalThis.gc when it loads).
v8.setFlagsFromString("--expose-gc");
(globalThis as { gc?: unknown }).gc ??= vm.runInNewContext("gc");

const heapMiB = () => process.memoryUsage().heapUsed / 1024 / 1024;

/** Held in a module variable, which V8 cannot see die early as it can a local one. */
let held: { i: number; s: string }[] | null = null;

/** Garbage in the old generation: objects that lived through a full collection (which promotes them), then died. */
function oldGarbage(): void {
  held = [];
  for (let i = 0; i < 300_000; i++) held.push({ i, s: `x${i}` });
  (globalThis as unknown as { gc: () => void }).gc();
  held = null;
}

it("a full collection frees old-generation garbage on this Node (gc({ type: 'major' }) does not on Node 20)", async () => {
  const { collectNow, collectAfterRequest } = await import("@/lib/util/gc");
  oldGarbage();
  const before = heapMiB();
  collectNow();
  expect(before - heapMiB()).toBeGreaterThan(10);

  // Every 100 S3 requests: the 99 before do not collect, the 100th does.
  for (let i = 0; i < 100; i++) collectAfterRequest(); // align the counter whatever it was
  oldGarbage();
  const held = heapMiB();
  for (let i = 0; i < 99; i++) collectAfterRequest();
  expect(held - heapMiB()).toBeLessThan(5);
  collectAfterRequest();
  expect(held - heapMiB()).toBeGreaterThan(10);
});
