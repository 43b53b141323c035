import http from "node:http";
import net from "node:net";

export type Fault = "500" | "cut" | "stall";

export interface FaultProxy {
  endpoint: string;
  /** Fail the next `times` requests that match with `fault`. */
  failNext(fault: Fault, match: (req: http.IncomingMessage) => boolean, times?: number): void;
  injected(): number;
  /** Stalled answers whose connection the client has not closed yet. */
  stalledOpen(): number;
  clear(): void;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of the test S3 server that injects faults: a 500
 * answer, a connection cut after part of the request body arrived, or an
 * answer that sends its headers and first KiB, then nothing.
 * "refuse" gives an endpoint where nothing listens; "silent" one that
 * accepts connections and never answers.
 */
export async function startFaultProxy(upstream: string, opts: { mode: "pass" | "refuse" | "silent" }): Promise<FaultProxy> {
  const up = new URL(upstream);
  let pending: { fault: Fault; match: (req: http.IncomingMessage) => boolean; left: number } | null = null;
  let injected = 0;
  let stalledOpen = 0;
  const sockets = new Set<net.Socket>();
  let server: net.Server;
  if (opts.mode === "silent") {
    server = net.createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
  } else {
    server = http.createServer((req, res) => {
      if (pending && pending.left > 0 && pending.match(req)) {
        pending.left--;
        injected++;
        if (pending.fault === "500") {
          req.resume();
          req.on("end", () => {
            res.writeHead(500, { "content-type": "application/xml" });
            res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>');
          });
          return;
        }
        if (pending.fault === "stall") {
          const fwd = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            stalledOpen++;
            res.once("close", () => stalledOpen--);
            let sent = 0;
            r.on("data", (c: Buffer) => {
              if (sent < 1024) res.write(c.subarray(0, 1024 - sent));
              sent += c.length;
            });
          });
          fwd.on("error", () => res.destroy());
          req.pipe(fwd);
          return;
        }
        let seen = 0;
        req.on("data", (c: Buffer) => {
          seen += c.length;
          if (seen > 64 * 1024) req.socket.destroy();
        });
        req.on("end", () => req.socket.destroy());
        return;
      }
      const fwd = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      fwd.on("error", () => res.destroy());
      req.pipe(fwd);
    });
    server.on("connection", (s) => sockets.add(s));
  }
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  if (opts.mode === "refuse") await close();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    failNext(fault, match, times = 1) {
      pending = { fault, match, left: times };
    },
    injected: () => injected,
    stalledOpen: () => stalledOpen,
    clear: () => void (pending = null),
    close,
  };
}
