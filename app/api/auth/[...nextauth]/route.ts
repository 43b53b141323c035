import NextAuth from "next-auth";
import { authOptions, signInContext } from "@/app/_server/auth";
import { getInstance } from "@/lib/runtime";
import { cookieValue, DEVICE_COOKIE, DEVICE_MAX_AGE_S, issueDeviceToken } from "@/lib/auth/device";

type Ctx = { params: Promise<{ nextauth: string[] }> };

async function handler(req: Request, ctx: Ctx) {
  const context = { deviceToken: cookieValue(req.headers.get("cookie"), DEVICE_COOKIE) };
  const res: Response = await signInContext.run(context, () => NextAuth(req as never, ctx as never, authOptions()));
  const who = (context as { signedIn?: string }).signedIn;
  if (!who) return res;
  // A successful sign-in marks this browser as one the user has used (lib/auth/device.ts).
  const https = new URL(req.url).protocol === "https:" || req.headers.get("x-forwarded-proto") === "https";
  const secure = https ? "; Secure" : "";
  const cookie = `${DEVICE_COOKIE}=${issueDeviceToken(getInstance().secretKey, who)}; Path=/api/auth; Max-Age=${DEVICE_MAX_AGE_S}; HttpOnly; SameSite=Strict${secure}`;
  const out = new Response(res.body, { status: res.status, statusText: res.statusText, headers: new Headers(res.headers) });
  out.headers.append("Set-Cookie", cookie);
  return out;
}

export { handler as GET, handler as POST };
