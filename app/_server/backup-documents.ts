import "server-only";
import { z } from "zod";
import { requireUser } from "./auth";
import { clientIp, readJson, requestSignal, route } from "./http";
import { keysFromHeaders, restoreKeys, restoreKeysSchema } from "./restore";
import { browseBackup } from "@/lib/backup/restore/browse";
import { documentChoiceSchema, restoreDocuments } from "@/lib/backup/restore/documents";
import { withBackupSource, type SourceSpec } from "@/lib/backup/restore/sources";

/**
 * The two routes every backup source has (a stored backup, an offsite
 * snapshot, a point in time): what it holds, and restore chosen documents.
 * Signed-in users: an admin sees and restores anyone's documents, a member
 * only their own (browseBackup and restoreDocuments judge each document).
 */

type Ctx = { params: Promise<Record<string, string>> };

/** GET: the documents the source holds, with their state against now (?q= filters by name); an encrypted one takes x-coffer-identity or x-coffer-passphrase. */
export function documentsListRoute(specOf: (url: URL, params: Record<string, string>) => SourceSpec) {
  return route<Ctx>(async (req, ctx) => {
    const { inst, user } = await requireUser();
    const url = new URL(req.url);
    const q = url.searchParams.get("q")?.slice(0, 255) ?? undefined;
    return Response.json(
      await withBackupSource(inst, specOf(url, await ctx.params), (source) => browseBackup(inst, user, source, { keys: keysFromHeaders(req.headers), q, signal: requestSignal(req) })),
    );
  });
}

/** POST: JSON {ids} or {deleted_since: true}, plus {identity} or {passphrase} for an encrypted backup, and what `extra` takes (a point in time's {at}). */
export function documentsRestoreRoute(specOf: (body: Record<string, unknown>, params: Record<string, string>) => SourceSpec, extra: readonly string[] = []) {
  return route<Ctx>(async (req, ctx) => {
    const { inst, user } = await requireUser();
    const raw = z.record(z.string(), z.unknown()).parse(await readJson(req, 1024 * 1024));
    const { identity, passphrase, ...rest } = raw;
    const keys = restoreKeysSchema.parse({ identity, passphrase });
    const choice = documentChoiceSchema.parse(Object.fromEntries(Object.entries(rest).filter(([k]) => !extra.includes(k))));
    const spec = specOf(raw, await ctx.params);
    const restored = await withBackupSource(inst, spec, (source) =>
      restoreDocuments(inst, user, clientIp(req.headers), source, choice, { keys: restoreKeys(keys), signal: requestSignal(req) }),
    );
    return Response.json({ restored }, { status: 201 });
  });
}
