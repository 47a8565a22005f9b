/** Every saga definition the engine runs, by name. The engine sees contexts as the JSON it stores them as. */
import type { SagaDefinition } from "../lib/saga";
import type { StoredContext } from "../contracts/sagas";
import { orderSaga } from "./order.saga";

export function sagaDefinitions(): Record<string, SagaDefinition<StoredContext>> {
  return { order: orderSaga() as unknown as SagaDefinition<StoredContext> };
}
