import "server-only";
import { z } from "zod";
import { AppError, diskFullError } from "@/lib/errors";
import type { Instance } from "@/lib/instance";
import type { User } from "@/lib/auth/users";
import { requireAdmin, requestIp } from "./auth";

export type ActionState = {
  ok?: boolean;
  message?: string;
  error?: string;
  fields?: Record<string, string>;
  /** What was submitted (never passwords), so a form that failed keeps its input. */
  values?: Record<string, string>;
  /** A secret shown to the admin this once (a new API token); never stored in clear. */
  secret?: string;
};

function echoValues(formData: FormData): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [k, v] of formData) if (typeof v === "string" && !/pass|secret|token|identity|\$/i.test(k)) values[k] = v;
  return values;
}

export interface ActionContext {
  inst: Instance;
  user: User;
  ip: string | null;
}

/**
 * An admin-only server action that parses its FormData with zod and hands
 * field errors back to useActionState (nextjs/saas-starter's validatedAction).
 */
export function adminAction<S extends z.ZodType>(
  schema: S,
  fn: (data: z.infer<S>, ctx: ActionContext) => Promise<ActionState | void>,
) {
  return async (_prev: ActionState, formData: FormData): Promise<ActionState> => {
    let ctx: ActionContext;
    try {
      const { inst, user } = await requireAdmin();
      ctx = { inst, user, ip: await requestIp() };
    } catch (err) {
      return { error: err instanceof AppError ? err.message : "Sign in again." };
    }
    const values = echoValues(formData);
    const parsed = schema.safeParse(Object.fromEntries(formData));
    if (!parsed.success) {
      const fields: Record<string, string> = {};
      for (const issue of parsed.error.issues) fields[issue.path.join(".")] ??= issue.message;
      return { error: "Check the highlighted fields.", fields, values };
    }
    try {
      return (await fn(parsed.data, ctx)) ?? { ok: true };
    } catch (err) {
      if (err instanceof AppError) return { error: err.message, fields: err.fields, values };
      if (err instanceof z.ZodError) return { error: err.issues[0]?.message ?? "Invalid input.", values };
      const full = diskFullError(err);
      if (full) return { error: full.message, values };
      console.error("Coffer: server action failed", err);
      return { error: "Something went wrong on the server. The details are in the server log." };
    }
  };
}
