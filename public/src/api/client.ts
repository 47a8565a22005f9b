/**
 * The console's one way to the API as the signed-in user: JSON in and out, the session's access token on every call,
 * one silent refresh and retry when the token has expired, and errors as `ApiError` (api/http.ts).
 */
import { SESSION_ENDED, sessionStore } from "../stores/session";
import { errorOf } from "./http";

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** Calls the API as the signed-in user; an expired token is refreshed once, silently. */
export async function api<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const send = () => {
    const token = sessionStore.getState().accessToken;
    return fetch(path, {
      method,
      signal: options.signal,
      headers: {
        accept: "application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(options.body === undefined ? {} : { "content-type": "application/json" }),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  };
  let res = await send();
  if (res.status === 401 && sessionStore.getState().user) {
    if (await sessionStore.getState().refresh()) res = await send();
  }
  if (!res.ok) {
    const error = await errorOf(res);
    if (error.status === 401 && sessionStore.getState().accessToken) {
      sessionStore.getState().expire(SESSION_ENDED);
    }
    throw error;
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}
