import { NextResponse } from "next/server";
import { inMaintenance } from "./lib/runtime/state";

// Pages only: API routes answer 503 themselves (app/_server/http.ts), and
// large uploads must never pass through here (proxy buffers bodies).
export const config = { matcher: ["/((?!api/|_next/|favicon\\.svg|apple-touch-icon\\.png|manifest\\.webmanifest).*)"] };

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5"><title>Restore in progress · Coffer</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#18181b;background:#fafafa}
@media (prefers-color-scheme:dark){body{color:#f4f4f5;background:#09090b}}</style></head>
<body><h1>A restore is running</h1><p>Coffer is putting a backup in place. This page reloads by itself; it takes a moment.</p></body></html>`;

export function proxy() {
  if (!inMaintenance()) return NextResponse.next();
  return new NextResponse(PAGE, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8", "Retry-After": "5", "Cache-Control": "no-store" } });
}
