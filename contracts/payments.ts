/** A payment as the payments service answers it: to the order saga, the console, tests and benches. */

import type { Lifecycle } from "./lifecycle";

export type PaymentStatus = "CHARGED" | "DECLINED" | "REFUNDED" | "VOIDED";

/**
 * A charge is made CHARGED or DECLINED; only a CHARGED payment is refunded. A refund that arrives before its charge
 * leaves a VOIDED tombstone in the charge's place, which no charge can then take.
 */
export const PAYMENT_LIFECYCLE: Lifecycle<PaymentStatus> = {
  CHARGED: ["REFUNDED"],
  DECLINED: [],
  REFUNDED: [],
  VOIDED: [],
};

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
