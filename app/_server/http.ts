import "server-only";
import { ZodError } from "zod";
import { AppError, diskFullError } from "@/lib/errors";
import { Readable } from "node:stream";
import { CLIENT_HEADER, EDGE_MARK, REQUEST_HEADER, requestsInFlight } from "@/lib/http/edge";
import { generation, inMaintenance, maintenanceError } from "@/lib/runtime";

/**
 * The client's address as Coffer's entry (server/main.ts) worked it out: the
 * TCP peer, or what a trusted proxy vouched for. Without the entry (next dev)
 * there is no address anyone can trust, so there is none.
 */
export function clientIp(headers: Headers): string | null {
  if (!(globalThis as Record<symbol, unknown>)[EDGE_MARK]) return null;
  return headers.get(CLIENT_HEADER);
}

/**
 * Fires when the client that made `req` goes away (the request's own
 * signal, or the entry's view of the socket): handed down to work done for
 * it, such as a pull from a bucket, so that the work stops too instead of
 * holding a staging slot and a connection to the store.
 */
export function requestSignal(req: Request): AbortSignal {
  const id = req.headers.get(REQUEST_HEADER);
  const signals = [req.signal, id ? requestsInFlight().get(id)?.gone.signal : undefined].filter((s): s is AbortSignal => !!s);
  return AbortSignal.any(signals);
}

/**
 * A request's raw body as a Node stream that fails when the client hangs up
 * (the request's own signal, or the entry's view of the socket), so that
 * whatever it is piped into cleans up instead of waiting forever.
 */
export function requestBody(req: Request): Readable {
  const body = Readable.fromWeb(req.body as never);
  const gone = requestSignal(req);
  const hangUp = () => body.destroy(new AppError(400, "CLIENT_GONE", "The connection closed before the whole body arrived."));
  // A client can hang up before the route has piped the body anywhere (it is
  // created before the route's first await). An error with no listener is an
  // uncaughtException; a consumer that attaches later still gets it from the
  // stream's state (pipeline and finished read `errored`).
  body.on("error", () => {});
  if (gone.aborted) hangUp();
  else {
    gone.addEventListener("abort", hangUp, { once: true });
    body.once("close", () => gone.removeEventListener("abort", hangUp));
  }
  return body;
}

export function jsonError(status: number, code: string, message: string, fields?: Record<string, string>): Response {
  return Response.json({ error: { code, message, ...(fields ? { fields } : {}) } }, { status });
}

/** `startedIn` is the runtime generation the request began in (see route()). */
export function errorResponse(err: unknown, startedIn?: number): Response {
  if (err instanceof AppError) {
    const res = jsonError(err.status, err.code, err.message, err.fields);
    if (err.status === 503) res.headers.set("Retry-After", "10");
    return res;
  }
  if (err instanceof ZodError) {
    const fields: Record<string, string> = {};
    for (const issue of err.issues) fields[issue.path.join(".") || "_"] ??= issue.message;
    const first = err.issues[0];
    const where = first?.path.length ? `${first.path.join(".")}: ` : "";
    return jsonError(400, "BAD_INPUT", `${where}${first?.message ?? "The request is not valid."}`, fields);
  }
  const full = diskFullError(err);
  if (full) return errorResponse(full);
  // A request that was already running when a restore replaced the instance under it.
  if (startedIn !== undefined && (inMaintenance() || generation() !== startedIn)) return errorResponse(maintenanceError());
  console.error("Coffer: unexpected error", err);
  return jsonError(500, "INTERNAL", "Something went wrong on the server. The details are in the server log.");
}

/**
 * Browsers send Origin on cross-site POST/DELETE; a mismatch is a forged
 * request. Scripts (curl) send none and are authorized by credentials alone.
 */
export function checkOrigin(req: Request): void {
  const origin = req.headers.get("origin");
  const site = req.headers.get("sec-fetch-site");
  if (site === "cross-site") throw new AppError(403, "BAD_ORIGIN", "Cross-site requests are not allowed.");
  if (!origin) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new AppError(403, "BAD_ORIGIN", "The request's Origin header is not valid.");
  }
  const expected = req.headers.get("x-forwarded-host") ?? req.headers.get("host");
  if (host !== expected) throw new AppError(403, "BAD_ORIGIN", "Cross-site requests are not allowed.");
}

type Handler<C> = (req: Request, ctx: C) => Promise<Response>;

/** Wraps a route handler: Origin check for unsafe methods, errors mapped to JSON, never a stack trace. */
export function route<C = unknown>(fn: Handler<C>): Handler<C> {
  return async (req, ctx) => {
    const startedIn = generation();
    try {
      if (inMaintenance()) throw maintenanceError();
      if (req.method !== "GET" && req.method !== "HEAD") checkOrigin(req);
      return await fn(req, ctx);
    } catch (err) {
      return errorResponse(err, startedIn);
    }
  };
}

const tooLarge = () => new AppError(413, "TOO_LARGE", "The request body is too large.");

/** A small body as text, never reading more than `maxBytes` (a chunked body declares no length). */
async function readCapped(req: Request, maxBytes: number): Promise<string> {
  if (Number(req.headers.get("content-length") ?? "0") > maxBytes) throw tooLarge();
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Parse a JSON body; malformed JSON is a 400, not a 500. With `empty`, an empty body stands for it. */
export async function readJson(req: Request, maxBytes = 64 * 1024, opts: { empty?: unknown } = {}): Promise<unknown> {
  const text = await readCapped(req, maxBytes);
  if (!text.trim() && "empty" in opts) return opts.empty;
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError(400, "BAD_JSON", "The request body must be JSON.");
  }
}

/**
 * A web ReadableStream that pulls from a Node stream one chunk at a time, so
 * a slow client slows the producer (backpressure) instead of growing a buffer;
 * cancel (the client went away) destroys the Node stream.
 */
export function toWebStream(node: import("node:stream").Readable, onCancel?: () => void): ReadableStream<Uint8Array> {
  const it = node[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { value, done } = await it.next();
          if (done) controller.close();
          else {
            // A view, not a copy: the chunk is not reused by its producer.
            const b = value as Buffer;
            controller.enqueue(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
          }
        } catch (err) {
          controller.error(err);
        }
      },
      cancel() {
        onCancel?.();
        node.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}

export function attachmentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
