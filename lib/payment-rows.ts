/**
 * The payments service's payments as its database holds them, and as the contracts (contracts/payments.ts) give
 * them.
 */
import type { Payment, PaymentStatus } from "../contracts/payments";

export interface PaymentRow {
  id: string;
  charge_key: string;
  order_id: string | null;
  amount: string | null;
  currency: string | null;
  payment_method: string | null;
  status: PaymentStatus;
  reason: string | null;
  created_at: Date;
  refunded_at: Date | null;
}

export function toPayment(row: PaymentRow): Payment {
  return {
    id: row.id,
    chargeKey: row.charge_key,
    orderId: row.order_id,
    amount: row.amount === null ? null : Number(row.amount),
    currency: row.currency,
    paymentMethod: row.payment_method,
    status: row.status,
    reason: row.reason,
    createdAt: row.created_at.toISOString(),
    refundedAt: row.refunded_at?.toISOString() ?? null,
  };
}
