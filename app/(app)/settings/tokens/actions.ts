"use server";

import { z } from "zod";
import { revalidatePath } from "next/cache";
import { adminAction } from "@/app/_server/actions";
import { createToken, revokeToken, TOKEN_SCOPES, type TokenScope } from "@/lib/auth/tokens";
import { userActor } from "@/lib/audit/log";

const scopeKeys = Object.keys(TOKEN_SCOPES) as TokenScope[];

const createForm = z.object({
  name: z.string(),
  expires: z.enum(["never", "30", "90", "365"]).default("90"),
  ...Object.fromEntries(scopeKeys.map((k) => [`scope_${k}`, z.literal("on").optional()])),
});

/** Settings → API tokens → Create: the token is in this answer only. */
export const createTokenAction = adminAction(createForm, async (v, ctx) => {
  const form = v as Record<string, string | undefined>;
  const scopes = scopeKeys.filter((k) => form[`scope_${k}`] === "on");
  const { token, row } = createToken(ctx.inst, userActor(ctx.user, ctx.ip), {
    name: v.name,
    scopes,
    expires_in_days: v.expires === "never" ? null : Number(v.expires),
  });
  revalidatePath("/settings/tokens");
  return { ok: true, message: `Created “${row.name}”. Copy it now: it is not shown again.`, secret: token };
});

export const revokeTokenAction = adminAction(z.object({ id: z.coerce.number().int().positive() }), async (v, ctx) => {
  revokeToken(ctx.inst, userActor(ctx.user, ctx.ip), v.id);
  revalidatePath("/settings/tokens");
  return { ok: true, message: "Revoked: the token stops working now." };
});
