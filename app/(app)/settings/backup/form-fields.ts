import { z } from "zod";

/** A whole number typed into a form, 0 to max. */
export const countField = (max: number) => z.coerce.number({ error: "Enter a number." }).int("Use a whole number.").min(0, "Use 0 or more.").max(max, `Use at most ${max}.`);
