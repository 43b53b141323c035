/**
 * Coffer's worker threads run from source text (`new Worker(source, { eval: true })`),
 * because a worker file beside this one would be missing from Next's server
 * bundle, and a file path that works for one of Vitest, the bundle and the
 * compiled CLI fails in another. Each worker body is a real function,
 * typechecked with the rest of the code, and its source is the function's
 * own text as the running build has it (compiled, bundled or minified).
 *
 * Only that text reaches the thread, so a worker body must be self-contained:
 * it gets modules through the `load` it is called with (the worker's own
 * `require`), never through an import of its module or any other outer
 * binding, and it imports nothing but types. Naming the parameter other than
 * `require` keeps bundlers from rewriting those calls.
 */
export type WorkerBody = (load: NodeJS.Require) => unknown;

/** Source for an eval worker that runs each body in turn with the worker's `require`. */
export function workerSource(...bodies: WorkerBody[]): string {
  return bodies.map((body) => `(${body.toString()})(require);`).join("\n");
}

/**
 * A worker body that lowers the running thread to nice 10 (Linux
 * priorities are per thread), so a backup's CPU work yields to requests.
 */
export function lowerThisThread(load: NodeJS.Require): void {
  try {
    const fs = load("node:fs") as typeof import("node:fs");
    const os = load("node:os") as typeof import("node:os");
    const tid = Number(fs.readlinkSync("/proc/thread-self").split("/").pop());
    os.setPriority(tid, 10);
  } catch {}
}
