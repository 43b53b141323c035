import { documentsRestoreRoute } from "@/app/_server/backup-documents";

/** Restore chosen documents of a stored backup into the running instance. */
export const POST = documentsRestoreRoute((_body, p) => ({ kind: "stored", name: p.name }));
