/**
 * The lifecycle of a stock reservation (products.reserve, release, commitReservation), one per saga step key. Like
 * payments, the first outcome under a key is kept: a repeat answers it, and a release that comes before its reserve
 * leaves a VOIDED mark so the late reserve is refused rather than taken.
 */

export const RESERVATION_STATUSES = ["RESERVED", "REJECTED", "RELEASED", "COMMITTED", "VOIDED"] as const;
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

/**
 * RESERVED → RELEASED (compensation: the stock goes back) or COMMITTED (the order completed);
 * COMMITTED → RELEASED: a saga whose last step (markShipped) failed after the commit compensates; the shipment is
 * cancelled and the payment refunded too, so the goods are back on the shelf. Once the saga completed, nothing
 * releases it: COMMITTED is final for a completed order.
 * REJECTED (not enough stock, nothing taken), RELEASED and VOIDED (released before any reserve) are final.
 */
const NEXT: Record<ReservationStatus, readonly ReservationStatus[]> = {
  RESERVED: ["RELEASED", "COMMITTED"],
  COMMITTED: ["RELEASED"],
  REJECTED: [],
  RELEASED: [],
  VOIDED: [],
};

/** The statuses a reservation may move to `to` from: what the conditional UPDATE of that move matches. */
export function reservationSources(to: ReservationStatus): ReservationStatus[] {
  return RESERVATION_STATUSES.filter((from) => NEXT[from].includes(to));
}

export interface ReservationLine {
  productId: string;
  quantity: number;
}

/**
 * One quantity per product, in id order: the order in which the rows are locked, so two reservations that share
 * products wait for each other instead of deadlocking.
 */
export function perProduct(lines: readonly ReservationLine[]): ReservationLine[] {
  const totals = new Map<string, number>();
  for (const line of lines) totals.set(line.productId, (totals.get(line.productId) ?? 0) + line.quantity);
  return [...totals.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([productId, quantity]) => ({ productId, quantity }));
}
