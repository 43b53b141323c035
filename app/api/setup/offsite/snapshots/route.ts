import { getInstance } from "@/lib/runtime";
import { requireSetupCode } from "@/lib/auth/setup";
import { route, clientIp, requestSignal } from "@/app/_server/http";
import { readWizardOffsite } from "@/app/_server/offsite";
import { closeRepository, listOffsiteSnapshots, openRepository } from "@/lib/backup/offsite/repository";
import { describeLocation } from "@/lib/backup/offsite/location";
import { offsiteContinuousWindow } from "@/lib/continuous/offsite-restore";

/** Wizard, restore from S3: the setup code, then the snapshots in the repository the JSON names, and the window of its continuous copy. */
export const POST = route(async (req) => {
  const inst = getInstance();
  requireSetupCode(inst, req.headers.get("x-setup-token"), clientIp(req.headers));
  const { loc } = await readWizardOffsite(req);
  const repo = openRepository(loc);
  try {
    const signal = requestSignal(req);
    const [snapshots, continuous] = await Promise.all([listOffsiteSnapshots(repo, signal), offsiteContinuousWindow(repo, signal)]);
    return Response.json({ location: describeLocation(loc), snapshots, continuous: continuous.first_restorable_at ? continuous : null });
  } finally {
    closeRepository(repo);
  }
});
