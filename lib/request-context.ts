/**
 * The request a piece of work belongs to, carried through async calls (AsyncLocalStorage), so every log line written
 * while handling it names its request id without each call site passing it on.
 */
import { AsyncLocalStorage } from "node:async_hooks";

export interface RequestContext {
  requestId: string;
}

/** The request each piece of work runs for, which the logger reads to stamp every record with its request id. */
export const requestContext = new AsyncLocalStorage<RequestContext>();

/** Fields the logger adds to every record: the current request id, when there is one. */
export function requestLogFields(): Partial<RequestContext> {
  const current = requestContext.getStore();
  return current ? { requestId: current.requestId } : {};
}
