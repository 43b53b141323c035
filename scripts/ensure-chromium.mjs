// Playwright drives Debian's Chromium (no browser downloads here). Install it when missing.
import fs from "node:fs";
import { execSync } from "node:child_process";

const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter(Boolean);
if (candidates.some((p) => fs.existsSync(p))) process.exit(0);

console.log("Chromium is not installed; installing Debian's chromium package for the browser tests…");
const sudo = process.getuid && process.getuid() !== 0 ? "sudo " : "";
try {
  execSync(`${sudo}apt-get update -qq`, { stdio: "inherit" });
  execSync(`${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium`, { stdio: "inherit" });
} catch {
  console.error("Could not install Chromium. Install Debian's 'chromium' package, or set CHROMIUM_PATH to a Chromium binary.");
  process.exit(1);
}
if (!fs.existsSync("/usr/bin/chromium")) {
  console.error("apt-get finished but /usr/bin/chromium is still missing. Set CHROMIUM_PATH to a Chromium binary.");
  process.exit(1);
}
