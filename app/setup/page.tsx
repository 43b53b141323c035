import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { connection } from "next/server";
import { isSetupComplete } from "@/lib/instance";
import { getInstance } from "@/lib/runtime";
import { SetupWizard } from "./_components/SetupWizard";

export const metadata: Metadata = { title: "Set up" };

export default async function SetupPage() {
  await connection();
  if (isSetupComplete(getInstance())) redirect("/login");
  return (
    <main className="mx-auto max-w-lg px-4 py-12 sm:py-20">
      <div className="mb-8 text-center">
        <p className="text-sm font-medium uppercase tracking-widest text-emerald-700 dark:text-emerald-400">Coffer</p>
        <h1 className="mt-2 text-2xl font-semibold tracking-tight">Set up this instance</h1>
      </div>
      <SetupWizard />
    </main>
  );
}
