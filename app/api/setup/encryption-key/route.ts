import { getInstance } from "@/lib/runtime";
import { requireSetupCode } from "@/lib/auth/setup";
import { route, clientIp } from "@/app/_server/http";
import { generateKey } from "@/lib/crypto/age";

/**
 * Wizard, Protect this instance: a new age key for the browser, once (the
 * setup code authorizes it). Nothing is stored here; New setup saves only
 * the recipient, after the admin has shown they kept the key.
 */
export const POST = route(async (req) => {
  requireSetupCode(getInstance(), req.headers.get("x-setup-token"), clientIp(req.headers));
  const key = generateKey();
  return Response.json({ ...key, instance: "this instance", created_at: new Date().toISOString() }, { status: 201, headers: { "Cache-Control": "no-store" } });
});
