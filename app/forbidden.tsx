import Link from "next/link";

export default function Forbidden() {
  return (
    <main className="mx-auto max-w-md px-4 py-24 text-center">
      <h1 className="text-2xl font-semibold">Admins only</h1>
      <p className="mt-2 text-sm text-zinc-600 dark:text-zinc-400">
        Your account can use Documents, but this page is for the instance&apos;s admins.
      </p>
      <Link href="/documents" className="mt-6 inline-block text-sm font-medium text-emerald-700 underline dark:text-emerald-400">
        Back to Documents
      </Link>
    </main>
  );
}
