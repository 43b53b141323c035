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
import type net from "node:net";
import { admitRequest, CLIENT_HEADER, EDGE_MARK, REQUEST_HEADER, requestsInFlight, SECURITY_HEADERS } from "../lib/http/edge";
import { clientAddress, normalizeAddress, parseTrustedProxies, TrustedProxiesError } from "../lib/http/peer";
import { ConnectionGate, serverLimits, ServerLimitsError } from "../lib/http/limits";

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

let limits: ReturnType<typeof serverLimits>;
try {
  limits = serverLimits(process.env);
} catch (err) {
  if (err instanceof ServerLimitsError) fail(err.message);
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

const HSTS = "max-age=31536000";

/** A connection over a cap: a 503 written straight on the socket (no request parsed), then a lingering close as in refuse(). */
function turnAway(socket: net.Socket, message: string) {
  const body = JSON.stringify({ error: { code: "TOO_MANY_CONNECTIONS", message } });
  socket.on("error", () => {});
  socket.end(
    `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 10\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.resume();
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * Watches a request's body as Node's parser delivers it (IncomingMessage's
 * push, which the parser calls for every chunk; wrapping it is the only
 * place that sees a body's bytes without consuming them in Next's stead):
 * - a body that makes no progress for bodyIdleMs is dropped, unless it is
 *   Coffer that stopped reading (the stream's buffer is full);
 * - a chunked body past `cap` is cut off (a declared one over it was
 *   refused before it was read).
 * - once the answer is out, what is left of an unread body is discarded by
 *   Node (past the parser, where nothing counts it) for at most 1 s, as in
 *   refuse(), then the connection closes.
 * Progress, not the total time, is what is timed: a slow honest upload lands.
 */
function watchBody(req: http.IncomingMessage, res: http.ServerResponse, cap: number | null) {
  const declared = req.headers["content-length"];
  if ((declared === undefined || declared === "0") && !req.headers["transfer-encoding"]) return;
  let received = 0;
  let timer: NodeJS.Timeout | undefined;
  // Once the response has finished, Node may have detached the socket (req.socket is null; it reads and drops
  // the rest of the body itself, and the client may already be on its next request there): then there is
  // nothing to close. A 507 answered before a large upload had arrived crashed the server on the null here.
  const close = () => req.socket?.destroy();
  const stalled = () => {
    if (req.readableLength >= req.readableHighWaterMark) return void (timer = setTimeout(stalled, limits.bodyIdleMs).unref());
    close();
  };
  timer = setTimeout(stalled, limits.bodyIdleMs).unref();
  const stop = () => clearTimeout(timer);
  req.once("close", stop);
  res.once("finish", () => {
    if (!req.complete) setTimeout(() => req.complete || close(), 1000).unref();
  });
  const push = req.push.bind(req);
  req.push = (chunk: unknown, encoding?: BufferEncoding) => {
    if (chunk === null) {
      stop();
      return push(chunk, encoding);
    }
    received += (chunk as Buffer).length;
    if (cap !== null && received > cap) {
      stop();
      close();
      return false;
    }
    timer?.refresh();
    return push(chunk, encoding);
  };
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

  const server = http.createServer({ headersTimeout: limits.headersTimeoutMs, requestTimeout: 0, keepAliveTimeout: limits.keepAliveTimeoutMs, connectionsCheckingInterval: limits.checkIntervalMs }, (req, res) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const peer = req.socket.remoteAddress;
    const fromProxy = !!peer && trusted.trusts(peer);
    // The browser reached a trusted proxy over HTTPS: tell it never to use plain HTTP here again. Never on plain HTTP, where anyone could set it.
    if (fromProxy && String(req.headers["x-forwarded-proto"] ?? "").split(",")[0].trim().toLowerCase() === "https") res.setHeader("Strict-Transport-Security", HSTS);
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
    // Next routes the spelling the caps were matched on, not a second reading of its own.
    req.url = verdict.url;
    watchBody(req, res, verdict.cap);
    handle(req, res).catch((err) => {
      console.error("Coffer: request failed", err);
      if (!res.headersSent) refuse(req, res, 500, "INTERNAL", "Something went wrong on the server. The details are in the server log.");
      else res.destroy();
    });
  });
  // headersTimeout also closes a socket that sends nothing (Node times a connection from its first byte's wait);
  // there is no total request time (uploads and restores stream for as long as they make progress: watchBody).
  // Over a connection cap a socket never reaches Node's parser: the gate runs in place of its connection listener.
  const parse = server.listeners("connection");
  if (parse.length !== 1) fail("the HTTP server's connection handling is not what this entry expects.");
  server.removeAllListeners("connection");
  const gate = new ConnectionGate(limits);
  server.on("connection", (socket: net.Socket) => {
    const peer = normalizeAddress(socket.remoteAddress ?? "") ?? "?";
    const viaProxy = trusted.trusts(peer);
    const refused = gate.admit(peer, viaProxy);
    if (refused) return turnAway(socket, refused);
    socket.once("close", () => gate.release(peer, viaProxy));
    (parse[0] as (s: net.Socket) => void).call(server, socket);
  });
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
