import { documentsListRoute } from "@/app/_server/backup-documents";

/** The documents an offsite snapshot holds (its database only is read from the bucket), with their state against now. */
export const GET = documentsListRoute((_url, p) => ({ kind: "offsite", name: p.name }));
