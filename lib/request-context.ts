/**
 * The request a piece of work belongs to, carried through async calls (AsyncLocalStorage), so every log line written
 * while handling it names its request id without each call site passing it on.
 */
import { AsyncLocalStorage } from "node:async_hooks";

export interface RequestContext {
  requestId: string;
}

const STORE = Symbol.for("aicunet.requestContext");
type WithStore = typeof globalThis & { [STORE]?: AsyncLocalStorage<RequestContext> };

/**
 * One store per process, even where this module is loaded more than once (tests load each node's modules in a
 * registry of its own): a logger from one copy must see the request a handler of another copy runs in.
 */
export const requestContext: AsyncLocalStorage<RequestContext> = ((globalThis as WithStore)[STORE] ??=
  new AsyncLocalStorage<RequestContext>());

/** Fields the logger adds to every record: the current request id, when there is one. */
export function requestLogFields(): Partial<RequestContext> {
  const current = requestContext.getStore();
  return current ? { requestId: current.requestId } : {};
}
