#!/usr/bin/env node
// The coffer command: plain Node, running the CLI compiled by `npm run build:cli` (npm install runs it).
const path = require("node:path");
// Whatever umask cron or a shell gave us, nothing Coffer writes is readable by other users.
process.umask(0o077);
// Worker threads resolve Coffer's dependencies from here, wherever the command is run from.
process.env.COFFER_APP_ROOT ??= path.join(__dirname, "..");
let cli;
try {
  cli = require(path.join(__dirname, "..", "dist", "cli", "coffer.js"));
} catch (err) {
  if (err && err.code === "MODULE_NOT_FOUND") {
    process.stderr.write("coffer: the CLI is not built yet. Run `npm run build:cli` (npm install does it) in the Coffer directory.\n");
    process.exit(1);
  }
  throw err;
}
cli.main(process.argv.slice(2)).then((code) => process.exit(code));
