import { requireAdmin } from "@/app/_server/auth";
import { route, requestSignal } from "@/app/_server/http";
import { configuredRepository, listOffsiteSnapshots, closeRepository } from "@/lib/backup/offsite/repository";
import { describeLocation } from "@/lib/backup/offsite/location";

/** The snapshots in the configured offsite repository, newest first. */
export const GET = route(async (req) => {
  const { inst } = await requireAdmin();
  const repo = configuredRepository(inst);
  try {
    return Response.json({ location: describeLocation(repo.loc), snapshots: await listOffsiteSnapshots(repo, requestSignal(req)) }, { headers: { "Cache-Control": "no-store" } });
  } finally {
    closeRepository(repo);
  }
});
