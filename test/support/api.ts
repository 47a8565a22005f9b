/** Requests to a gateway as the suites send them. */

/** A request to the gateway at `base` with a bearer token; a body is sent as JSON. */
export function apiRequest(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export interface OrderOptions {
  quantity?: number;
  paymentMethod?: string;
  country?: string;
}

/** The body of `POST /api/orders` for one product, shipped to `shippingName` (which tests use to tag orders). */
export function orderBody(productId: string, shippingName: string, options: OrderOptions = {}) {
  return {
    items: [{ productId, quantity: options.quantity ?? 1 }],
    shippingAddress: {
      name: shippingName,
      street: "1 Main St",
      city: "Berlin",
      postalCode: "10115",
      country: options.country ?? "DE",
    },
    paymentMethod: options.paymentMethod ?? "pm_card_ok",
  };
}
