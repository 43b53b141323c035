import { getInstance } from "@/lib/runtime";
import { healthReport } from "@/lib/health";
import { route } from "@/app/_server/http";

export const GET = route(async () => Response.json(healthReport(getInstance()), { headers: { "Cache-Control": "no-store" } }));
