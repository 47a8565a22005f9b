/** Every status change of an order goes through `transition`, which refuses moves the lifecycle lacks. */
import { ConflictError } from "./errors";
import { ORDER_TRANSITIONS, canTransition, type OrderStatus } from "../contracts/orders";

/** Returns `to` when the move is legal; 409 `INVALID_TRANSITION` otherwise. */
export function transition(from: OrderStatus, to: OrderStatus): OrderStatus {
  if (!canTransition(from, to)) {
    throw new ConflictError(`An order cannot go from ${from} to ${to}`, "CONFLICT", {
      reason: "INVALID_TRANSITION",
      from,
      to,
      allowed: ORDER_TRANSITIONS[from],
    });
  }
  return to;
}
