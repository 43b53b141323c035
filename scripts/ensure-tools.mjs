// The tests need two Debian programs: Chromium (Playwright drives it; no browser downloads here)
// and age (encrypted backups must decrypt with the standard tool, and its files with Coffer).
// Install whichever is missing.
import fs from "node:fs";
import { execSync } from "node:child_process";

const chromium = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter(Boolean);
const missing = [];
if (!chromium.some((p) => fs.existsSync(p))) missing.push("chromium");
if (!fs.existsSync("/usr/bin/age") || !fs.existsSync("/usr/bin/age-keygen")) missing.push("age");
if (missing.length === 0) process.exit(0);

console.log(`Installing Debian's ${missing.join(" and ")} for the tests…`);
const sudo = process.getuid && process.getuid() !== 0 ? "sudo " : "";
try {
  execSync(`${sudo}apt-get update -qq`, { stdio: "inherit" });
  execSync(`${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(" ")}`, { stdio: "inherit" });
} catch {
  console.error(`Could not install ${missing.join(", ")}. Install Debian's packages (chromium, age), or set CHROMIUM_PATH to a Chromium binary.`);
  process.exit(1);
}
for (const [pkg, file] of [["chromium", "/usr/bin/chromium"], ["age", "/usr/bin/age"]]) {
  if (missing.includes(pkg) && !fs.existsSync(file)) {
    console.error(`apt-get finished but ${file} is still missing.`);
    process.exit(1);
  }
}
