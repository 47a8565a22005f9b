/**
 * The API's answers over HTTP, below the session: errors as `ApiError` with the API's machine-readable type and
 * fields (and in words a person can act on), and the session's own calls, which carry no access token. The session
 * store builds on this; the signed-in client (api/client.ts) builds on both.
 */

export interface FieldProblem {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly data: unknown,
    readonly requestId: string | null,
    /** Seconds to wait before trying again, from a 429's or 503's `Retry-After`. */
    readonly retryAfter: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The offending fields of a validation error (422) or of a refused schema (409), if any. */
  get fields(): FieldProblem[] {
    const list = Array.isArray(this.data)
      ? this.data
      : Array.isArray((this.data as { problems?: unknown } | null)?.problems)
        ? (this.data as { problems: unknown[] }).problems
        : [];
    return list
      .filter((item): item is FieldProblem => typeof (item as FieldProblem)?.field === "string")
      .map((item) => ({ field: item.field, message: item.message }));
  }
}

/** What went wrong, in words a person can act on. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    switch (true) {
      case err.status === 401:
        return "You are not signed in, or your session has ended. Please sign in again.";
      case err.status === 403:
        return "You do not have permission to do this.";
      case err.status === 404:
        return "It was not found: it may have been removed, or the address is wrong.";
      case err.status === 422 && err.fields.length > 0:
        return `Please check: ${err.fields.map((f) => `${f.field} (${f.message})`).join("; ")}.`;
      case err.status === 429:
        return "Too many requests just now. Wait a moment and try again.";
      case err.status >= 500:
        return `The server could not do this right now${err.requestId ? ` (request ${err.requestId})` : ""}. Try again shortly.`;
      default:
        return err.message;
    }
  }
  if (err instanceof TypeError) return "The server cannot be reached. Check the connection and try again.";
  return err instanceof Error ? err.message : String(err);
}

export async function errorOf(res: Response): Promise<ApiError> {
  const requestId = res.headers.get("x-request-id");
  const body = (await res.json().catch(() => null)) as { type?: string; message?: string; data?: unknown } | null;
  return new ApiError(
    res.status,
    body?.type ?? "HTTP_ERROR",
    body?.message ?? res.statusText,
    body?.data,
    requestId,
    res.headers.get("retry-after"),
  );
}

/**
 * A call of the session's own (sign-in, refresh, sign-out): no access token; the refresh token travels as the
 * session cookie (`X-Session: cookie`), never in the page. Errors as ApiError, no retry.
 */
export async function publicApi<T>(method: string, path: string, body: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: { accept: "application/json", "content-type": "application/json", "x-session": "cookie" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}
