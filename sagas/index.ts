/** Every saga definition the engine runs, by name. The engine sees contexts as the JSON it stores them as. */
import type { Config } from "../lib/config";
import type { SagaDefinition } from "../lib/saga";
import type { StoredContext } from "../contracts/sagas";
import { ORDER_SAGA_START, orderSaga } from "./order.saga";

/** The event that starts each saga, by definition name: what the engine subscribes to, before it reads its settings. */
export const SAGA_START_EVENTS: Readonly<Record<string, string>> = { order: ORDER_SAGA_START };

/** The definitions, their timeouts, attempts and delays from the node's `SAGA_*` configuration. */
export function sagaDefinitions(saga: Config["saga"]): Record<string, SagaDefinition<StoredContext>> {
  return { order: orderSaga(saga) as unknown as SagaDefinition<StoredContext> };
}
