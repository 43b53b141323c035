/**
 * Coffer's HTTP entry: Next's request handler behind a plain Node server, so
 * that Coffer knows the TCP peer (the App Router does not expose it) and can
 * act before Next reads a body. `npm start`, the tests and the container
 * image all run this, never `next start`.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { admitRequest, CLIENT_HEADER, EDGE_MARK, REQUEST_HEADER, requestsInFlight, SECURITY_HEADERS } from "../lib/http/edge";
import { clientAddress, parseTrustedProxies, TrustedProxiesError } from "../lib/http/peer";

// Whatever umask the service manager gave us, nothing Coffer writes is readable by other users.
process.umask(0o077);
// This entry only ever serves the production build (React and Next read it).
(process.env as Record<string, string>).NODE_ENV ??= "production";

function fail(message: string): never {
  console.error(`Coffer: ${message}`);
  process.exit(1);
}

let trusted: ReturnType<typeof parseTrustedProxies>;
try {
  trusted = parseTrustedProxies(process.env.COFFER_TRUSTED_PROXIES);
} catch (err) {
  if (err instanceof TrustedProxiesError) fail(err.message);
  throw err;
}

const port = Number(process.env.PORT || 3000);
const hostname = process.env.HOST || undefined;
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`PORT must be a port number, not "${process.env.PORT}".`);

// Forwarded-* headers say where a request came from; only a trusted proxy may say it.
const FORWARDED = ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-real-ip", "forwarded"];

/**
 * Answer and hang up without reading the body we refused. A socket closed
 * with unread data in it is reset, and a reset can destroy our answer
 * before the client reads it; so, like nginx's lingering close, discard
 * what arrives for a moment (at most 1 s or 64 MiB), then close.
 */
function refuse(req: http.IncomingMessage, res: http.ServerResponse, status: number, code: string, message: string) {
  // No "Connection: close": Node would close the socket the moment the answer is written.
  res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store" });
  res.end(JSON.stringify({ error: { code, message } }));
  let discarded = 0;
  const close = () => req.socket.destroy();
  const timer = setTimeout(close, 1000);
  timer.unref();
  req.on("data", (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > 64 * 1024 * 1024) close();
  });
  req.on("end", () => clearTimeout(timer));
  req.on("error", () => {});
}

async function main() {
  const appRoot = path.resolve(__dirname, "..", "..");
  process.env.COFFER_APP_ROOT ??= appRoot;
  (globalThis as Record<symbol, unknown>)[EDGE_MARK] = true;
  // The configuration the build resolved (as Next's own standalone server does): next.config.ts is
  // then not compiled at every start, so the runtime needs neither SWC nor webpack (the image has neither).
  const built = path.join(appRoot, ".next", "required-server-files.json");
  if (!process.env.__NEXT_PRIVATE_STANDALONE_CONFIG && fs.existsSync(built)) {
    process.env.__NEXT_PRIVATE_STANDALONE_CONFIG = JSON.stringify((JSON.parse(fs.readFileSync(built, "utf8")) as { config: object }).config);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const createNext = require("next") as (opts: object) => { prepare(): Promise<void>; getRequestHandler(): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> };
  const app = createNext({ dev: false, dir: appRoot, hostname: hostname ?? "localhost", port });
  await app.prepare();
  const handle = app.getRequestHandler();

  const server = http.createServer((req, res) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const peer = req.socket.remoteAddress;
    const fromProxy = !!peer && trusted.trusts(peer);
    const client = clientAddress(peer, req.headers["x-forwarded-for"], trusted);
    if (!fromProxy) for (const h of FORWARDED) delete req.headers[h];
    delete req.headers[CLIENT_HEADER];
    if (client) req.headers[CLIENT_HEADER] = client;
    const id = randomUUID();
    const gone = new AbortController();
    requestsInFlight().set(id, { gone, startedAt: performance.now() });
    req.headers[REQUEST_HEADER] = id;
    res.once("close", () => {
      requestsInFlight().delete(id);
      if (!res.writableFinished) gone.abort(new Error("the client closed the connection"));
    });
    const verdict = admitRequest(req.method ?? "GET", req.url ?? "/", req.headers);
    if (!verdict.ok) return refuse(req, res, verdict.status, verdict.code, verdict.message);
    handle(req, res).catch((err) => {
      console.error("Coffer: request failed", err);
      if (!res.headersSent) refuse(req, res, 500, "INTERNAL", "Something went wrong on the server. The details are in the server log.");
      else res.destroy();
    });
  });
  // A slow client may not hold a connection open forever before sending its headers.
  server.headersTimeout = 30_000;
  server.requestTimeout = 0; // uploads and restores stream for as long as they need
  server.listen(port, hostname, () => {
    const where = hostname ?? "0.0.0.0";
    console.log(`Coffer is listening on http://${where.includes(":") ? `[${where}]` : where}:${port}` + (trusted.list.length ? ` (trusting X-Forwarded-For from ${trusted.list.join(", ")})` : ""));
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      server.close();
      server.closeAllConnections();
      process.exit(0);
    });
  }
}

main().catch((err) => {
  console.error("Coffer: the server could not start:", err);
  process.exit(1);
});
