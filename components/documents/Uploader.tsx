"use client";

import { useRef, useState } from "react";
import { useRouter } from "next/navigation";
import { Alert, Button, ProgressBar } from "@/components/ui";
import { formatBytes } from "@/lib/format";
import { uploadWithProgress } from "@/components/upload/uploadWithProgress";

interface Progress {
  name: string;
  loaded: number;
  total: number;
}

function uploadOne(file: File, onProgress: (loaded: number) => void): Promise<void> {
  return uploadWithProgress<unknown>(`/api/documents?name=${encodeURIComponent(file.name)}`, file, { contentType: file.type || "application/octet-stream", onProgress }).then(
    () => undefined,
    (err: Error) => {
      throw new Error(`${file.name}: ${err.message}`);
    },
  );
}

export function Uploader({ maxBytes, maxLabel }: { maxBytes: number; maxLabel: string }) {
  const router = useRouter();
  const input = useRef<HTMLInputElement>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  async function upload(files: FileList | null) {
    if (!files || files.length === 0) return;
    setError(null);
    setDone(null);
    const list = Array.from(files);
    const tooBig = list.find((f) => f.size > maxBytes);
    if (tooBig) {
      setError(`${tooBig.name} is ${formatBytes(tooBig.size)}; the upload limit is ${maxLabel}.`);
      return;
    }
    try {
      for (const f of list) {
        setProgress({ name: f.name, loaded: 0, total: f.size });
        await uploadOne(f, (loaded) => setProgress({ name: f.name, loaded, total: f.size }));
      }
      setDone(list.length === 1 ? `Uploaded ${list[0].name}.` : `Uploaded ${list.length} files.`);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setProgress(null);
      if (input.current) input.current.value = "";
      router.refresh();
    }
  }

  const pct = progress ? (progress.total ? (progress.loaded / progress.total) * 100 : 100) : 0;
  return (
    <section aria-label="Upload" className="mb-6 space-y-3 rounded-lg border border-dashed border-zinc-300 bg-white p-5 dark:border-zinc-700 dark:bg-zinc-900">
      <div className="flex flex-wrap items-center gap-3">
        <label htmlFor="upload" className="text-sm font-medium">
          Upload files
        </label>
        <input
          ref={input}
          id="upload"
          type="file"
          multiple
          disabled={!!progress}
          onChange={(e) => upload(e.target.files)}
          className="text-sm file:mr-3 file:rounded-md file:border-0 file:bg-emerald-700 file:px-3 file:py-1.5 file:text-sm file:font-medium file:text-white hover:file:bg-emerald-800"
        />
        <span className="text-xs text-zinc-600 dark:text-zinc-400">Up to {maxLabel} each.</span>
      </div>
      {progress && (
        <div className="space-y-1" data-testid="upload-progress">
          <ProgressBar value={pct} label={`Uploading ${progress.name}`} />
          <p className="text-xs text-zinc-600 dark:text-zinc-400">
            Uploading {progress.name}: {formatBytes(progress.loaded)} of {formatBytes(progress.total)} ({Math.floor(pct)}%)
          </p>
        </div>
      )}
      {error && <Alert>{error}</Alert>}
      {done && <Alert tone="success">{done}</Alert>}
      {progress && (
        <Button variant="ghost" busy>
          Uploading…
        </Button>
      )}
    </section>
  );
}
