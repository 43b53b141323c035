import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { connection } from "next/server";
import { getInstance, isSetupComplete, instanceName } from "@/lib/instance";
import { sessionUser } from "@/app/_server/auth";
import { LoginForm } from "@/components/auth/LoginForm";

export const metadata: Metadata = { title: "Sign in" };

export default async function LoginPage() {
  await connection();
  const inst = getInstance();
  if (!isSetupComplete(inst)) redirect("/setup");
  if (await sessionUser(inst)) redirect("/documents");
  return (
    <main className="mx-auto max-w-sm px-4 py-16 sm:py-24">
      <div className="mb-8 text-center">
        <p className="text-sm font-medium uppercase tracking-widest text-emerald-700 dark:text-emerald-400">Coffer</p>
        <h1 className="mt-2 text-2xl font-semibold tracking-tight">Sign in to {instanceName(inst)}</h1>
      </div>
      <LoginForm />
    </main>
  );
}
