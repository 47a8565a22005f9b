/**
 * The token endpoint's error answers (`POST /oauth/token`): the RFC 6749 §5.2 body `{ error, error_description }`,
 * not the gateway's usual error shape, for its own errors and for anything else that goes wrong there.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Errors } from "moleculer";
import { OAuthError } from "./errors";

export interface OAuthErrorAnswer {
  status: number;
  body: { error: string; error_description: string };
}

/**
 * An OAuth error keeps its code and status; a validation error (400 or 422) is `invalid_request` (400); anything
 * else is `server_error`, which says nothing of the cause.
 */
export function oauthErrorAnswer(error: Error): OAuthErrorAnswer {
  const err = error as Errors.MoleculerError;
  const oauth = err instanceof OAuthError || (err.data as { error?: string } | undefined)?.error !== undefined;
  if (oauth) return { status: err.code, body: err.data as OAuthErrorAnswer["body"] };
  if (err.code === 422 || err.code === 400) {
    return { status: 400, body: { error: "invalid_request", error_description: err.message } };
  }
  return {
    status: err.code >= 400 && err.code < 600 ? err.code : 500,
    body: { error: "server_error", error_description: "The token endpoint failed" },
  };
}

/** Sends the answer, uncached; a 401 to a client that authenticated with HTTP Basic says so in `WWW-Authenticate`. */
export function sendOAuthError(req: IncomingMessage, res: ServerResponse, error: Error): void {
  const { status, body } = oauthErrorAnswer(error);
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Cache-Control", "no-store");
  if (status === 401 && req.headers.authorization?.startsWith("Basic ")) {
    res.setHeader("WWW-Authenticate", 'Basic realm="aicunet"');
  }
  res.writeHead(status);
  res.end(JSON.stringify(body));
}
