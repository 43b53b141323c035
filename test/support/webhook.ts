import http from "node:http";

/** A webhook receiver on 127.0.0.1 that keeps what Coffer posts to it. */
export async function startWebhook(): Promise<{ url: string; received: { event: string; error: string | null }[]; close: () => Promise<void> }> {
  const received: { event: string; error: string | null }[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}
