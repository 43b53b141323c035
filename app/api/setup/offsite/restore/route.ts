import { getInstance } from "@/lib/runtime";
import { requireSetupCode } from "@/lib/auth/setup";
import { route, clientIp, requestSignal } from "@/app/_server/http";
import { readWizardOffsite } from "@/app/_server/offsite";
import { closeRepository, openRepository } from "@/lib/backup/offsite/repository";
import { stageOffsiteSnapshot } from "@/lib/backup/offsite/pull";

/** Wizard, restore from S3: stage one snapshot (the newest complete one if none is named) for preview. */
export const POST = route(async (req) => {
  const inst = getInstance();
  const ip = clientIp(req.headers);
  requireSetupCode(inst, req.headers.get("x-setup-token"), ip);
  const { loc, snapshot, keys } = await readWizardOffsite(req);
  const repo = openRepository(loc);
  try {
    return Response.json(await stageOffsiteSnapshot(inst, repo, snapshot, { keys, owner: `setup:${ip ?? "?"}`, signal: requestSignal(req) }), { status: 201 });
  } finally {
    closeRepository(repo);
  }
});
