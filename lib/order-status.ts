/** The order lifecycle. Every status change goes through `transition`, which refuses moves the lifecycle lacks. */
import { ConflictError } from "./errors";

export const ORDER_STATUSES = [
  "PENDING",
  "PAID",
  "SHIPPED",
  "COMPLETED",
  "CANCELLED",
  "COMPENSATED",
  "FAILED",
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/**
 * PENDING → PAID (payment captured) or CANCELLED (customer, or payment declined) or FAILED;
 * PAID → SHIPPED, or COMPENSATED (shipping failed and the payment was refunded), or FAILED;
 * SHIPPED → COMPLETED. CANCELLED, COMPENSATED, COMPLETED and FAILED are final.
 */
const NEXT: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: ["PAID", "CANCELLED", "FAILED"],
  PAID: ["SHIPPED", "COMPENSATED", "FAILED"],
  SHIPPED: ["COMPLETED"],
  COMPLETED: [],
  CANCELLED: [],
  COMPENSATED: [],
  FAILED: [],
};

/** Whether an order has reached the end of its lifecycle. */
export function isFinal(status: OrderStatus): boolean {
  return NEXT[status].length === 0;
}

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return NEXT[from].includes(to);
}

/** Returns `to` when the move is legal; 409 `INVALID_TRANSITION` otherwise. */
export function transition(from: OrderStatus, to: OrderStatus): OrderStatus {
  if (!canTransition(from, to)) {
    throw new ConflictError(`An order cannot go from ${from} to ${to}`, "CONFLICT", {
      reason: "INVALID_TRANSITION",
      from,
      to,
      allowed: NEXT[from],
    });
  }
  return to;
}
