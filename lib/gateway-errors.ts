/**
 * Errors that reach the gateway in a shape of their own, made into ours (lib/errors.ts) before the gateway answers
 * with them: the body parser's, and Moleculer's for an action with no endpoint to take the call.
 */
import type { Errors } from "moleculer";
import {
  MalformedJsonError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  UnreadableBodyError,
  UnsupportedMediaTypeError,
} from "./errors";
import type { GatewayRequest } from "./gateway-request";

/** The largest JSON body `/api` takes. */
export const BODY_LIMIT = "1mb";

/**
 * Moleculer says 404 when no endpoint of an existing route's action can take calls (none running, its circuit breaker
 * open, or its node gone since the routes were built: SERVICE_NOT_FOUND), where for the client the route exists and
 * the service is unavailable for now. The body parser's errors have dotted lowercase types.
 */
export function errorForClient(error: Error, req: GatewayRequest): Error {
  const { code, type } = error as Errors.MoleculerError;
  if (type === "SERVICE_NOT_AVAILABLE" || type === "SERVICE_NOT_FOUND") {
    const action = req.$alias?.action;
    return new ServiceUnavailableError({ service: action?.split(".")[0] ?? "addressed", action });
  }
  if (code === 413) return new PayloadTooLargeError(BODY_LIMIT);
  // The body parser's own errors (dotted types such as `entity.parse.failed`) become ours, in the one error shape.
  if (typeof type === "string" && type.includes(".") && code >= 400 && code < 500) {
    if (type === "entity.parse.failed") return new MalformedJsonError(error.message);
    if (code === 415) return new UnsupportedMediaTypeError(error.message, {});
    return new UnreadableBodyError(error.message, type.replace(/\./g, "_").toUpperCase());
  }
  return error;
}
