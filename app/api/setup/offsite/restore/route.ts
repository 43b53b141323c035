import { getInstance } from "@/lib/runtime";
import { requireSetupCode } from "@/lib/auth/setup";
import { route, clientIp, requestSignal } from "@/app/_server/http";
import { readWizardOffsite } from "@/app/_server/offsite";
import { closeRepository, openRepository } from "@/lib/backup/offsite/repository";
import { stageOffsiteSnapshot } from "@/lib/backup/offsite/pull";
import { stageOffsitePointInTime } from "@/lib/continuous/offsite-restore";

/** Wizard, restore from S3: stage one snapshot (the newest complete one if none is named), or the continuous copy at `at`, for preview. */
export const POST = route(async (req) => {
  const inst = getInstance();
  const ip = clientIp(req.headers);
  requireSetupCode(inst, req.headers.get("x-setup-token"), ip);
  const { loc, snapshot, at, keys } = await readWizardOffsite(req);
  const repo = openRepository(loc);
  try {
    const opts = { keys, owner: `setup:${ip ?? "?"}`, signal: requestSignal(req) };
    return Response.json(await (at ? stageOffsitePointInTime(inst, repo, at, opts) : stageOffsiteSnapshot(inst, repo, snapshot, opts)), { status: 201 });
  } finally {
    closeRepository(repo);
  }
});
