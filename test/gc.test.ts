import v8 from "node:v8";
import vm from "node:vm";
import { expect, it } from "vitest";

// What npm start gives the server: --expose-gc (lib/util/gc.ts reads globalThis.gc when it loads).
v8.setFlagsFromString("--expose-gc");
(globalThis as { gc?: unknown }).gc ??= vm.runInNewContext("gc");

const heapMiB = () => process.memoryUsage().heapUsed / 1024 / 1024;

/** Garbage in the old generation: objects that lived through two young collections, then died. */
function oldGarbage(): void {
  let keep: { i: number; s: string }[] = [];
  for (let i = 0; i < 300_000; i++) keep.push({ i, s: `x${i}` });
  const gc = (globalThis as unknown as { gc: (o?: object) => void }).gc;
  gc({ type: "minor" });
  gc({ type: "minor" });
  keep = [];
  void keep;
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
