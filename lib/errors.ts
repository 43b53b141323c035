/**
 * An error meant for the person on the other end: a stable code, a sentence,
 * and the HTTP status that fits. Anything else that escapes is a bug (500).
 */
export class AppError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503 | 504 | 507,
    readonly code: string,
    message: string,
    readonly fields?: Record<string, string>,
  ) {
    super(message);
  }
}

export const unauthorized = () => new AppError(401, "UNAUTHORIZED", "Sign in first.");
export const forbidden = (msg = "You do not have permission to do that.") => new AppError(403, "FORBIDDEN", msg);
export const notFound = (what = "That") => new AppError(404, "NOT_FOUND", `${what} was not found.`);
