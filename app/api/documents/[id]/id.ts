import { notFound } from "@/lib/errors";

export type DocumentCtx = { params: Promise<{ id: string }> };

/** A document id from the path; anything else is a 404 like an id that does not exist. */
export async function documentId(ctx: DocumentCtx, what = "That document"): Promise<number> {
  const { id } = await ctx.params;
  if (!/^[1-9][0-9]{0,15}$/.test(id)) throw notFound(what);
  return Number(id);
}
