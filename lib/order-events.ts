/** The events the orders service publishes about an order, built as their envelopes. */
import type { Order } from "../contracts/orders";
import { deterministicId } from "./delivery";
import { createEnvelope } from "./events";

/**
 * The event that starts an order's saga. Its id is the order's own, so when it is sent again (by the orders service's
 * `reannounceStalled`) every consumer's inbox recognises it.
 */
export function orderCreatedEvent(order: Order, correlationId: string) {
  const envelope = createEnvelope("order.created", { order }, { source: "orders", correlationId });
  return { ...envelope, id: deterministicId("order.created", order.id) };
}
