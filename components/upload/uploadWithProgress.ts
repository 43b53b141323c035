/**
 * POST a file as the raw request body with upload progress. XHR, because
 * only XHR reports upload progress in browsers; the raw body (not multipart)
 * lets the server stream it to disk. Resolves to the parsed JSON answer, or
 * rejects with the server's own error message.
 */
export function uploadWithProgress<T>(
  url: string,
  file: File,
  opts: { contentType: string; headers?: Record<string, string>; expectStatus?: number; onProgress?: (loaded: number) => void },
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Content-Type", opts.contentType);
    for (const [k, v] of Object.entries(opts.headers ?? {})) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded);
    xhr.onload = () => {
      let data: unknown = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {}
      if (xhr.status === (opts.expectStatus ?? 201)) return resolve(data as T);
      const error = (data as { error?: { message?: string; code?: string } } | null)?.error;
      reject(Object.assign(new Error(error?.message ?? `The upload failed (HTTP ${xhr.status}).`), { code: error?.code }));
    };
    xhr.onerror = () => reject(new Error("The connection to the server was lost during the upload."));
    xhr.send(file);
  });
}
