import { documentsListRoute } from "@/app/_server/backup-documents";

/** The documents a stored backup holds, with their state against now (?q= filters by name). */
export const GET = documentsListRoute((_url, p) => ({ kind: "stored", name: p.name }));
