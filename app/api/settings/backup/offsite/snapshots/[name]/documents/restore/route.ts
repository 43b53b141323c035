import { documentsRestoreRoute } from "@/app/_server/backup-documents";

/** Restore chosen documents of an offsite snapshot: each file the vault lacks is one blob from the bucket, checked against its hash. */
export const POST = documentsRestoreRoute((_body, p) => ({ kind: "offsite", name: p.name }));
