/** Requests to a gateway as the suites and the benches send them. */
import { isFinal, type Order, type OrderWithSaga } from "../contracts/orders";
import type { SagaStatus } from "../contracts/sagas";
import type { Product } from "../contracts/products";
import { json, TEST_ADMIN, waitFor } from "./nodes";

/** A request to the gateway at `base` with a bearer token; a body is sent as JSON. */
export function apiRequest(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
) {
  return fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
}

/** Logs in through the gateway at `base` and returns the access token. */
export async function login(base: string, credentials = TEST_ADMIN): Promise<string> {
  const res = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(credentials),
  });
  if (res.status !== 200) throw new Error(`login as ${credentials.email} failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { accessToken: string }).accessToken;
}

/** Registers a customer through the gateway at `base` and returns their access token. */
export async function registerCustomer(base: string, email: string): Promise<string> {
  const credentials = { email, password: "a-long-enough-password" };
  await fetch(`${base}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...credentials, displayName: email }),
  });
  return login(base, credentials);
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

/** Where a client sends its requests, read at every call: a suite fills it in `beforeAll` and may log in again. */
export interface GatewayTarget {
  base: string;
  /** The token a request carries unless it names another. */
  token: string;
  /** How long a request may take before it is given up (an error); unbounded unless set. */
  timeoutMs?: number;
}

/** The fields of `POST /api/products`. */
export interface ProductFields {
  sku: string;
  name: string;
  price: { amount: number; currency: string };
  stock?: number;
}

/** The requests every suite and bench makes of a gateway: one definition each. */
export interface GatewayClient {
  /** A request with the target's token unless `token` names another; `headers` are added to it. */
  send(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<Response>;
  /** Creates a product; anything but a 201 throws. */
  createProduct(fields: ProductFields, token?: string): Promise<Product>;
  /** Places an order for one product, shipped to `tag`; anything but a 201 throws. */
  placeOrder(productId: string, tag: string, options?: OrderOptions, token?: string): Promise<Order>;
  orderOf(id: string, token?: string): Promise<OrderWithSaga>;
  /** Waits until the order and its saga have both ended (the two are read apart, so one may be a step ahead). */
  settled(id: string, options?: { timeoutMs?: number; token?: string }): Promise<OrderWithSaga>;
}

const SAGA_ENDED: readonly SagaStatus[] = ["COMPLETED", "COMPENSATED", "FAILED"];

export function gatewayClient(target: GatewayTarget): GatewayClient {
  const send = (method: string, path: string, body?: unknown, token = target.token, headers?: Record<string, string>) =>
    apiRequest(
      target.base,
      token,
      method,
      path,
      body,
      headers,
      target.timeoutMs === undefined ? undefined : AbortSignal.timeout(target.timeoutMs),
    );
  async function created<T>(res: Response, what: string): Promise<T> {
    if (res.status !== 201) throw new Error(`${what}: expected 201, got ${res.status} ${await res.text()}`);
    return json<T>(res);
  }
  const orderOf = async (id: string, token?: string) =>
    json<OrderWithSaga>(await send("GET", `/api/orders/${id}`, undefined, token));
  return {
    send,
    orderOf,
    createProduct: async (fields, token) =>
      created<Product>(await send("POST", "/api/products", fields, token), `product ${fields.sku}`),
    placeOrder: async (productId, tag, options = {}, token) =>
      created<Order>(await send("POST", "/api/orders", orderBody(productId, tag, options), token), `order ${tag}`),
    async settled(id, { timeoutMs = 30_000, token } = {}) {
      let last: OrderWithSaga | undefined;
      return waitFor(
        async () => {
          last = await orderOf(id, token);
          const sagaEnded = last.saga !== null && SAGA_ENDED.includes(last.saga.status);
          return sagaEnded && isFinal(last.status) ? last : undefined;
        },
        timeoutMs,
        `order ${id} and its saga to end`,
      ).catch((err: Error) => {
        // Where it stopped, so a failure says why.
        throw new Error(`${err.message}; last seen: ${JSON.stringify(last ?? null)}`);
      });
    },
  };
}
