/**
 * What the orders service is asked: who calls (the gateway's and the caller's meta), the body of a new order, and
 * its hash, which tells a retried request from a new one under the same Idempotency-Key.
 */
import { createHash } from "node:crypto";
import type { CallerMeta } from "../contracts/caller";
import type { ShippingAddress } from "../contracts/orders";
import type { GatewayMeta } from "./gateway-meta";
import { assertType, paramsSchema, type ParamsOf, type SameType } from "./params";

/** A country as orders and the carrier name it: an ISO 3166-1 alpha-2 code. */
export const COUNTRY_CODE = /^[A-Z]{2}$/;

/** The body of a new order (`orders.create`). */
export const createOrderParams = paramsSchema({
  items: {
    type: "array",
    min: 1,
    max: 50,
    items: {
      type: "object",
      strict: true,
      props: {
        productId: { type: "uuid" },
        quantity: { type: "number", integer: true, min: 1, max: 1000 },
      },
    },
  },
  shippingAddress: {
    type: "object",
    strict: true,
    props: {
      name: { type: "string", trim: true, min: 1, max: 200 },
      street: { type: "string", trim: true, min: 1, max: 200 },
      city: { type: "string", trim: true, min: 1, max: 100 },
      postalCode: { type: "string", trim: true, min: 1, max: 20 },
      country: { type: "string", pattern: COUNTRY_CODE },
    },
  },
  paymentMethod: { type: "string", pattern: /^pm_[a-z0-9_]{1,60}$/ },
  $$strict: true,
});
export type CreateOrderParams = ParamsOf<typeof createOrderParams>;
// `ShippingAddress` is the console's contract (it cannot import the validator's types): an address field added to it
// and not here would be refused by the strict rule above, so the typecheck says so first.
assertType<SameType<CreateOrderParams["shippingAddress"], ShippingAddress>>();

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
