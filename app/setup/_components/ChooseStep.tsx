"use client";

/** Step 2: an empty vault, or this instance's data back from a backup. */
export function ChooseStep({ onChoose }: { onChoose: (step: "new" | "restore") => void }) {
  return (
    <div className="space-y-3">
      <p className="text-sm text-zinc-600 dark:text-zinc-400">Step 2 of 2. How do you want to start?</p>
      <button
        type="button"
        onClick={() => onChoose("new")}
        className="block w-full rounded-lg border border-zinc-200 bg-white p-5 text-left shadow-sm hover:border-emerald-600 focus-visible:outline-2 focus-visible:outline-emerald-600 dark:border-zinc-800 dark:bg-zinc-900"
      >
        <span className="block font-semibold">New setup</span>
        <span className="mt-1 block text-sm text-zinc-600 dark:text-zinc-400">
          Start with an empty vault and create the first admin account.
        </span>
      </button>
      <button
        type="button"
        onClick={() => onChoose("restore")}
        className="block w-full rounded-lg border border-zinc-200 bg-white p-5 text-left shadow-sm hover:border-emerald-600 focus-visible:outline-2 focus-visible:outline-emerald-600 dark:border-zinc-800 dark:bg-zinc-900"
      >
        <span className="block font-semibold">Restore from backup</span>
        <span className="mt-1 block text-sm text-zinc-600 dark:text-zinc-400">
          Moving to a new server? Bring back documents, accounts and settings from a backup file (.tar.gz) or straight from S3-compatible storage.
        </span>
      </button>
    </div>
  );
}
