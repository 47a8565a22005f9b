/** An order and its lifecycle, as every service, the saga, the console, tests and benches see it. */
import { canMove, isFinalIn, type Lifecycle } from "./lifecycle";
import type { Saga } from "./sagas";
import type { Page } from "../lib/paging";

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
export const ORDER_TRANSITIONS: Lifecycle<OrderStatus> = {
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
  return isFinalIn(ORDER_TRANSITIONS, status);
}

/** The statuses an order ends in. */
export const FINAL_ORDER_STATUSES = ORDER_STATUSES.filter(isFinal);

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return canMove(ORDER_TRANSITIONS, from, to);
}

export interface ShippingAddress {
  name: string;
  street: string;
  city: string;
  postalCode: string;
  /** ISO 3166-1 alpha-2. */
  country: string;
}

export interface OrderLine {
  productId: string;
  sku: string;
  name: string;
  quantity: number;
  unitPrice: { amount: number; currency: string };
}

export interface Order {
  id: string;
  customerId: string;
  status: OrderStatus;
  statusReason: string | null;
  total: { amount: number; currency: string };
  lines: OrderLine[];
  shippingAddress: ShippingAddress;
  paymentMethod: string;
  /** The request that placed it: the correlation id of its events and saga, and the trace id of what it caused. */
  requestId: string | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** An order as `GET /api/orders/:id` answers: with its saga, if there is one. */
export type OrderWithSaga = Order & { saga: Saga | null };

export type OrderPage = Page<Order>;
