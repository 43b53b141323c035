import fs from "node:fs";
import { expect, it } from "vitest";
import { APP_VERSION } from "@/lib/version";

it("lib/version.ts matches package.json", () => {
  expect(APP_VERSION).toBe(JSON.parse(fs.readFileSync("package.json", "utf8")).version);
});
