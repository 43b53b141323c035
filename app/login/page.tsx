import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { connection } from "next/server";
import { isSetupComplete, instanceName } from "@/lib/instance";
import { getInstance } from "@/lib/runtime";
import { sessionUser } from "@/app/_server/auth";
import { LoginForm } from "@/components/auth/LoginForm";
import { Alert } from "@/components/ui";
import { formatDateTime } from "@/lib/format";

export const metadata: Metadata = { title: "Sign in" };

export default async function LoginPage({ searchParams }: { searchParams: Promise<Record<string, string | undefined>> }) {
  const { restored } = await searchParams;
  const restoredAt = restored && !Number.isNaN(Date.parse(restored)) ? new Date(restored) : null;
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
      {restoredAt && (
        <div className="mb-4">
          <Alert tone="success">
            Restored from the backup of {formatDateTime(restoredAt.toISOString())}. Sign in with an account from that instance.
          </Alert>
        </div>
      )}
      <LoginForm />
    </main>
  );
}
