import { z } from "zod";
import type { Instance } from "../../instance";
import { parsePointInTime, pointInTimeSource } from "../../continuous/pitr";
import { closeRepository, configuredRepository } from "../offsite/repository";
import { offsiteSource } from "../offsite/pull";
import { storedSource, type BackupSource } from "./browse";

/** Which backup to browse or restore documents from, as routes and pages name it. */
export const sourceSpecSchema = z.discriminatedUnion(
  "kind",
  [
    z.object({ kind: z.literal("stored"), name: z.string().max(255) }).strict(),
    z.object({ kind: z.literal("offsite"), name: z.string().max(255) }).strict(),
    z.object({ kind: z.literal("point_in_time"), at: z.string().max(64) }).strict(),
  ],
  { error: "Name a stored backup, an offsite snapshot or a point in time." },
);
export type SourceSpec = z.infer<typeof sourceSpecSchema>;

/** The source `spec` names, and what to close when done with it (an offsite source holds a connection). */
export async function openBackupSource(inst: Instance, spec: SourceSpec): Promise<{ source: BackupSource; close: () => void }> {
  switch (spec.kind) {
    case "stored":
      return { source: await storedSource(inst, spec.name), close: () => {} };
    case "point_in_time":
      return { source: pointInTimeSource(inst, parsePointInTime(spec.at)), close: () => {} };
    case "offsite": {
      const repo = configuredRepository(inst);
      try {
        return { source: offsiteSource(repo, spec.name), close: () => closeRepository(repo) };
      } catch (err) {
        closeRepository(repo);
        throw err;
      }
    }
  }
}

/** Run `fn` with the source `spec` names, closed after. */
export async function withBackupSource<T>(inst: Instance, spec: SourceSpec, fn: (source: BackupSource) => Promise<T>): Promise<T> {
  const { source, close } = await openBackupSource(inst, spec);
  try {
    return await fn(source);
  } finally {
    close();
  }
}
