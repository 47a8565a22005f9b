/** A payment as the payments service answers it: to the order saga, the console, tests and benches. */

export type PaymentStatus = "CHARGED" | "DECLINED" | "REFUNDED" | "VOIDED";

export interface Payment {
  id: string;
  chargeKey: string;
  orderId: string | null;
  amount: number | null;
  currency: string | null;
  paymentMethod: string | null;
  status: PaymentStatus;
  reason: string | null;
  createdAt: string;
  refundedAt: string | null;
}
