/**
 * What the orders service is asked: who calls (the gateway's and the caller's meta), the body of a new order, and
 * its hash, which tells a retried request from a new one under the same Idempotency-Key.
 */
import { createHash } from "node:crypto";
import type { CallerMeta } from "../contracts/caller";
import type { ShippingAddress } from "../contracts/orders";
import type { GatewayMeta } from "./gateway-meta";

export interface CreateOrderParams {
  items: { productId: string; quantity: number }[];
  shippingAddress: ShippingAddress;
  paymentMethod: string;
}

export type OrdersMeta = GatewayMeta & CallerMeta;

/** A stable hash of what was asked, so a retried request with the same Idempotency-Key can be told from a new one. */
export function requestHash(params: CreateOrderParams): string {
  const canonical = JSON.stringify({
    items: params.items.map((item) => [item.productId, item.quantity]),
    shippingAddress: Object.entries(params.shippingAddress).sort(([a], [b]) => a.localeCompare(b)),
    paymentMethod: params.paymentMethod,
  });
  return createHash("sha256").update(canonical).digest("hex");
}
