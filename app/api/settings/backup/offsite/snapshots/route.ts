import { requireAdmin } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { configuredRepository, listOffsiteSnapshots, closeRepository } from "@/lib/backup/offsite";
import { describeLocation } from "@/lib/backup/offsite-settings";

/** The snapshots in the configured offsite repository, newest first. */
export const GET = route(async () => {
  const { inst } = await requireAdmin();
  const repo = configuredRepository(inst);
  try {
    return Response.json({ location: describeLocation(repo.loc), snapshots: await listOffsiteSnapshots(repo) }, { headers: { "Cache-Control": "no-store" } });
  } finally {
    closeRepository(repo);
  }
});
