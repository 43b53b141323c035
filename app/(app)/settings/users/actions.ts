"use server";

import { z } from "zod";
import { revalidatePath } from "next/cache";
import { adminAction } from "@/app/_server/actions";
import { userActor } from "@/lib/audit/log";
import { createUser, passwordSchema, removeUser, resetPassword, usernameSchema } from "@/lib/auth/users";

const actorOf = (ctx: { user: { id: number; username: string }; ip: string | null }) => userActor(ctx.user, ctx.ip);

export const addMember = adminAction(
  z.object({ username: usernameSchema, password: passwordSchema, role: z.enum(["member", "admin"]).default("member") }),
  async (data, ctx) => {
    const user = await createUser(ctx.inst, actorOf(ctx), data);
    revalidatePath("/settings/users");
    return { ok: true, message: `Added ${user.username}.` };
  },
);

export const resetMemberPassword = adminAction(
  z.object({ userId: z.coerce.number().int().positive(), password: passwordSchema }),
  async (data, ctx) => {
    await resetPassword(ctx.inst, actorOf(ctx), data.userId, data.password);
    revalidatePath("/settings/users");
    return { ok: true, message: "Password changed. That user's open sessions have ended." };
  },
);

export const removeMember = adminAction(z.object({ userId: z.coerce.number().int().positive() }), async (data, ctx) => {
  const { movedDocuments } = removeUser(ctx.inst, actorOf(ctx), data.userId);
  revalidatePath("/settings/users");
  return {
    ok: true,
    message: movedDocuments ? `Removed. Their ${movedDocuments} document(s) now belong to you.` : "Removed.",
  };
});
