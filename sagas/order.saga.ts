/**
 * The order saga: started by `order.created`, it charges the payment, marks the order PAID, creates the shipment and
 * marks it SHIPPED, then COMPLETED. A declined payment cancels the order (nothing to undo); a shipment that fails
 * after the payment refunds it and the order ends COMPENSATED. Timeouts, attempts and delays come from the
 * configuration (`SAGA_*`).
 */
import { config } from "../lib/config";
import type { SagaDefinition } from "../lib/saga";
import type { Order, ShippingAddress } from "../services/orders.service";
import type { Payment } from "../services/payments.service";
import type { Shipment } from "../services/shipping.service";

export interface OrderSagaContext {
  sagaId: string;
  orderId: string;
  amount: number;
  currency: string;
  paymentMethod: string;
  shippingAddress: ShippingAddress;
  /** Set once the order is PAID: compensating it then ends COMPENSATED rather than CANCELLED. */
  paid?: boolean;
  paymentId?: string;
  shipmentId?: string;
}

export function orderSaga(): SagaDefinition<OrderSagaContext> {
  const { stepTimeoutMs, stepAttempts, retryDelayMs, compensationAttempts, waitUnavailableMs, maxWaits } =
    config().saga;
  const retry = { attempts: stepAttempts, delayMs: retryDelayMs, maxDelayMs: 30_000 };
  const markOrder = (status: Order["status"]) => ({
    action: "orders.transition",
    params: (context: OrderSagaContext) => ({ id: context.orderId, status }),
  });
  return {
    name: "order",
    start: {
      event: "order.created",
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
        };
      },
    },
    steps: [
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
