import fs from "node:fs";

/** Debian's Chromium (scripts/ensure-tools.mjs installs it); CHROMIUM_PATH overrides. */
export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter(Boolean) as string[];
  return candidates.find((p) => fs.existsSync(p)) ?? "/usr/bin/chromium";
}
