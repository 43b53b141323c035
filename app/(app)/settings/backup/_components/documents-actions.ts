"use server";

import { z } from "zod";
import { requireUser, requestIp } from "@/app/_server/auth";
import { restoreKeys, restoreKeysSchema } from "@/app/_server/restore";
import { AppError, diskFullError } from "@/lib/errors";
import { browseBackup, type BrowseResult } from "@/lib/backup/restore/browse";
import { sourceSpecSchema, withBackupSource, type SourceSpec } from "@/lib/backup/restore/sources";
import { restoreDocuments, documentChoiceSchema, type RestoredDocument } from "@/lib/backup/restore/documents";

type Result<T> = { ok: true; value: T } | { ok: false; code: string; error: string };

async function guarded<T>(fn: () => Promise<T>): Promise<Result<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (err instanceof AppError) return { ok: false, code: err.code, error: err.message };
    if (err instanceof z.ZodError) return { ok: false, code: "BAD_JSON", error: err.issues[0]?.message ?? "Invalid input." };
    const full = diskFullError(err);
    if (full) return { ok: false, code: full.code, error: full.message };
    console.error("Coffer: browsing a backup failed", err);
    return { ok: false, code: "INTERNAL", error: "Something went wrong on the server. The details are in the server log." };
  }
}

/** The documents of a backup (stored, offsite, a point in time) the signed-in user may see (each action authorizes itself). */
export async function listBackupDocuments(spec: SourceSpec, key: { identity?: string; passphrase?: string }, q: string): Promise<Result<BrowseResult>> {
  return guarded(async () => {
    const { inst, user } = await requireUser();
    const keys = restoreKeys(restoreKeysSchema.parse(key));
    const filter = z.string().max(255).parse(q);
    return withBackupSource(inst, sourceSpecSchema.parse(spec), (source) => browseBackup(inst, user, source, { keys, q: filter }));
  });
}

/** Restore chosen documents (or everything deleted since) of a backup into this instance. */
export async function restoreBackupDocuments(
  spec: SourceSpec,
  choice: { ids: number[] } | { deleted_since: true },
  key: { identity?: string; passphrase?: string },
): Promise<Result<RestoredDocument[]>> {
  return guarded(async () => {
    const { inst, user } = await requireUser();
    const parsed = documentChoiceSchema.parse(choice);
    const keys = restoreKeys(restoreKeysSchema.parse(key));
    const ip = await requestIp();
    return withBackupSource(inst, sourceSpecSchema.parse(spec), (source) => restoreDocuments(inst, user, ip, source, parsed, { keys }));
  });
}
