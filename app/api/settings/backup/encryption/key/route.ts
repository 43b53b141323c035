import { requireAdmin } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { generateKey } from "@/lib/crypto/age";
import { instanceName } from "@/lib/instance";

/**
 * A new age key for this admin's browser, once: the identity is in this
 * answer only. Coffer stores nothing until the admin confirms they saved it
 * and the recipient (the public half) is saved in Settings.
 */
export const POST = route(async () => {
  const { inst } = await requireAdmin();
  const key = generateKey();
  return Response.json({ ...key, instance: instanceName(inst), created_at: new Date().toISOString() }, { status: 201, headers: { "Cache-Control": "no-store" } });
});
