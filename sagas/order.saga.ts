/**
 * The order saga: started by `order.created`, it reserves the order's stock, charges the payment, marks the order
 * PAID, creates the shipment, makes the reservation final, marks the order SHIPPED, then COMPLETED.
 * Not enough stock cancels the order (nothing to undo); a declined payment releases the stock and cancels it; a
 * shipment that fails after the payment refunds it, releases the stock, and the order ends COMPENSATED. Timeouts,
 * attempts and delays come from the node's configuration (`SAGA_*`).
 */
import type { Config } from "../lib/config";
import type { SagaDefinition } from "../lib/saga";
import type { Order, ShippingAddress } from "../contracts/orders";
import type { ReservationLine } from "../lib/stock-reservation";
import type { Payment } from "../contracts/payments";
import type { Shipment } from "../contracts/shipping";

export interface OrderSagaContext {
  sagaId: string;
  orderId: string;
  amount: number;
  currency: string;
  paymentMethod: string;
  shippingAddress: ShippingAddress;
  /** What the order takes from stock. */
  lines: ReservationLine[];
  /** Set once the order is PAID: compensating it then ends COMPENSATED rather than CANCELLED. */
  paid?: boolean;
  paymentId?: string;
  shipmentId?: string;
}

/** The key the stock step reserved under: the engine's idempotency key of that step. */
const reservationKey = (context: OrderSagaContext) => `${context.sagaId}:stock`;

/** The event that starts an order's saga. */
export const ORDER_SAGA_START = "order.created";

export function orderSaga(saga: Config["saga"]): SagaDefinition<OrderSagaContext> {
  const { stepTimeoutMs, stepAttempts, retryDelayMs, compensationAttempts, waitUnavailableMs, maxWaits } = saga;
  const retry = { attempts: stepAttempts, delayMs: retryDelayMs, maxDelayMs: 30_000 };
  const markOrder = (status: Order["status"]) => ({
    action: "orders.transition",
    params: (context: OrderSagaContext) => ({ id: context.orderId, status }),
  });
  return {
    name: "order",
    start: {
      event: ORDER_SAGA_START,
      subjectId: (payload) => (payload as { order: Order }).order.id,
      context: (payload, sagaId) => {
        const { order } = payload as { order: Order };
        return {
          sagaId,
          orderId: order.id,
          amount: order.total.amount,
          currency: order.total.currency,
          paymentMethod: order.paymentMethod,
          shippingAddress: order.shippingAddress,
          lines: order.lines.map(({ productId, quantity }) => ({ productId, quantity })),
        };
      },
    },
    steps: [
      {
        // First, so an order the stock cannot fill is cancelled before anyone is charged.
        name: "stock",
        action: "products.reserve",
        params: (c) => ({ orderId: c.orderId, lines: c.lines }),
        compensation: { action: "products.release", params: (c) => ({ reservationKey: reservationKey(c) }) },
        timeoutMs: stepTimeoutMs,
        retry,
      },
      {
        name: "payment",
        action: "payments.charge",
        params: (c) => ({ orderId: c.orderId, amount: c.amount, currency: c.currency, paymentMethod: c.paymentMethod }),
        result: (_, payment) => ({ paymentId: (payment as Payment).id }),
        compensation: { action: "payments.refund", params: (c) => ({ chargeKey: `${c.sagaId}:payment` }) },
        timeoutMs: stepTimeoutMs,
        retry,
      },
      { name: "markPaid", ...markOrder("PAID"), result: () => ({ paid: true }), timeoutMs: stepTimeoutMs, retry },
      {
        name: "shipping",
        action: "shipping.create",
        params: (c) => ({ orderId: c.orderId, address: c.shippingAddress }),
        result: (_, shipment) => ({ shipmentId: (shipment as Shipment).id }),
        compensation: { action: "shipping.cancel", params: (c) => ({ shipmentKey: `${c.sagaId}:shipping` }) },
        timeoutMs: stepTimeoutMs,
        retry,
      },
      {
        // The stock left with the shipment. Before markShipped, not after: a step failing after it compensates while
        // the order is still PAID (a SHIPPED order cannot end COMPENSATED); a commit compensated so is released.
        name: "commitStock",
        action: "products.commitReservation",
        params: (c) => ({ reservationKey: reservationKey(c) }),
        timeoutMs: stepTimeoutMs,
        retry,
      },
      { name: "markShipped", ...markOrder("SHIPPED"), timeoutMs: stepTimeoutMs, retry },
    ],
    onCompleted: markOrder("COMPLETED"),
    onCompensated: {
      action: "orders.transition",
      params: (c, reason) => ({
        id: c.orderId,
        status: c.paid ? "COMPENSATED" : "CANCELLED",
        reason: (reason ?? "compensated").slice(0, 1000),
      }),
    },
    compensationRetry: { attempts: compensationAttempts, delayMs: retryDelayMs, maxDelayMs: 30_000 },
    compensationTimeoutMs: stepTimeoutMs,
    unavailableDelayMs: waitUnavailableMs,
    maxUnavailableWaits: maxWaits,
  };
}
