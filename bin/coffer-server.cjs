#!/usr/bin/env node
// Coffer's web server (server/main.ts compiled by `npm run build:cli`, which npm install runs): Next behind an entry that knows the client's address.
const path = require("node:path");
try {
  require.resolve(path.join(__dirname, "..", "dist", "server", "main.js"));
} catch {
  process.stderr.write("coffer: the server entry is not built yet. Run `npm run build:cli` (npm install does it) in the Coffer directory.\n");
  process.exit(1);
}
require(path.join(__dirname, "..", "dist", "server", "main.js"));
