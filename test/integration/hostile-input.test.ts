/**
 * Client input that no service can store or the database cannot hold, on one node with every service (the embedded
 * default's wiring on the real PostgreSQL): it is the client's error (4xx in the one error shape), changes nothing,
 * and cannot open a circuit breaker for anyone else. Then a fuzz of every operation of the OpenAPI document as admin:
 * no answer of 500, and the node ready and serving afterwards.
 */
import type { ProductPage } from "../../contracts/products";
import { orderBody, registerCustomer } from "../../support/api";
import { type ErrorBody, json } from "../../support/nodes";
import { hostileRequests, type OpenApiDocument } from "../support/fuzz";
import { withNode } from "../support/suite";

const node = withNode({ RATE_LIMIT_USER: "1000000" });
const { send } = node;

const anonymous = (path: string) => fetch(`${node.base}${path}`);

describe("input a client sends cannot take an endpoint away from others", () => {
  it("answers a page out of range 422, twenty times, and the listing stays up for everyone", async () => {
    for (let i = 0; i < 20; i += 1) {
      const res = await anonymous("/api/products?page=99999999999999999999");
      expect(res.status).toBe(422);
      expect(await json<ErrorBody>(res)).toMatchObject({ type: "VALIDATION_ERROR", data: [{ field: "page" }] });
    }
    const listing = await anonymous("/api/products");
    expect(listing.status).toBe(200);
    expect(await json<ProductPage>(listing)).toMatchObject({ page: 1 });
  });

  it("answers a NUL in an order's shipping name 422 naming the field, twenty times, and orders stay up", async () => {
    const customer = await registerCustomer(node.base, "nul-orders@example.com");
    const product = await node.createProduct({
      sku: "NUL-1",
      name: "Nul",
      price: { amount: 100, currency: "EUR" },
      stock: 100,
    });
    for (let i = 0; i < 20; i += 1) {
      const res = await send("POST", "/api/orders", orderBody(product.id, "Bob\u0000"), customer);
      expect(res.status).toBe(422);
      expect(await json<ErrorBody>(res)).toMatchObject({
        type: "UNSTORABLE_TEXT",
        data: [{ field: "shippingAddress.name", type: "unstorableText" }],
      });
    }
    const mine = await json<ProductPage>(await send("GET", "/api/orders", undefined, customer));
    expect(mine.rows).toEqual([]);
    expect((await send("POST", "/api/orders", orderBody(product.id, "Bob"), customer)).status).toBe(201);
  });

  it("refuses unstorable text in a user's name, at registration and on an update, and changes nothing", async () => {
    const register = await fetch(`${node.base}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        email: "nul-user@example.com",
        password: "a-long-enough-password",
        displayName: "Bob\u0000",
      }),
    });
    expect(register.status).toBe(422);
    expect(await json<ErrorBody>(register)).toMatchObject({
      type: "UNSTORABLE_TEXT",
      data: [{ field: "displayName" }],
    });
    const signIn = await fetch(`${node.base}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "nul-user@example.com", password: "a-long-enough-password" }),
    });
    expect(signIn.status).toBe(401);

    const customer = await registerCustomer(node.base, "bob@example.com");
    const me = await json<{ id: string; displayName: string }>(await send("GET", "/api/auth/me", undefined, customer));
    const patch = await send("PATCH", `/api/auth/users/${me.id}`, { displayName: "Bob\u0000" });
    expect(patch.status).toBe(422);
    expect(await json<ErrorBody>(patch)).toMatchObject({ type: "UNSTORABLE_TEXT", data: [{ field: "displayName" }] });
    const after = await json<{ displayName: string }>(await send("GET", `/api/auth/users/${me.id}`));
    expect(after.displayName).toBe(me.displayName);
  });

  it("refuses a null where a value goes, optional fields included, naming the field, and changes nothing", async () => {
    const customer = await registerCustomer(node.base, "null-user@example.com");
    const me = await json<{ id: string; displayName: string }>(await send("GET", "/api/auth/me", undefined, customer));
    for (const body of [{ displayName: null }, { roles: null }, { status: null }]) {
      const patch = await send("PATCH", `/api/auth/users/${me.id}`, body);
      expect(patch.status).toBe(422);
      expect(await json<ErrorBody>(patch)).toMatchObject({
        type: "VALIDATION_ERROR",
        data: [{ field: Object.keys(body)[0], type: "required" }],
      });
    }
    const after = await json<{ displayName: string; status: string }>(await send("GET", `/api/auth/users/${me.id}`));
    expect(after).toMatchObject({ displayName: me.displayName, status: "active" });
    // The customer's session was not revoked by a null status either.
    expect((await send("GET", "/api/auth/me", undefined, customer)).status).toBe(200);
  });

  it("never runs an action for an OPTIONS request, whatever method it names, and changes nothing", async () => {
    const product = { sku: "OPTIONS-1", name: "Options", price: { amount: 100, currency: "EUR" }, stock: 1 };
    for (const named of ["POST", undefined]) {
      const res = await fetch(`${node.base}/api/products`, {
        method: "OPTIONS",
        headers: {
          authorization: `Bearer ${node.token}`,
          "content-type": "application/json",
          ...(named ? { "access-control-request-method": named } : {}),
        },
        body: JSON.stringify(product),
      });
      expect(res.status).toBe(204);
      expect(res.headers.get("allow")).toContain("POST");
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    }
    const found = await json<ProductPage>(await anonymous("/api/products?search=OPTIONS-1"));
    expect(found.rows).toEqual([]);
  });

  it("answers JSON nested too deep 400 and a body too large 413, in the one error shape", async () => {
    const deep = await fetch(`${node.base}/api/audit/schemas`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${node.token}` },
      body: `{"schema":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
    });
    expect(deep.status).toBe(400);
    expect(await json<ErrorBody>(deep)).toMatchObject({ code: 400, type: "JSON_TOO_DEEP" });
    const large = await send("POST", "/api/products", { sku: "x".repeat(2_000_000) });
    expect(large.status).toBe(413);
    expect(await json<ErrorBody>(large)).toMatchObject({ code: 413, type: "PAYLOAD_TOO_LARGE" });
  });
});

it("answers 503, not 404, on a route whose action has no endpoint that can take calls (its breaker open)", async () => {
  // What an open breaker does to an endpoint: marks it unavailable until its half-open time.
  const endpoints = (
    node.broker.registry as unknown as { getActionEndpoints(name: string): { endpoints: { state: boolean }[] } }
  ).getActionEndpoints("products.list").endpoints;
  for (const endpoint of endpoints) endpoint.state = false;
  try {
    const res = await anonymous("/api/products");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await json<ErrorBody>(res)).toMatchObject({
      type: "SERVICE_UNAVAILABLE",
      data: { service: "products", action: "products.list", retryAfter: 5 },
    });
  } finally {
    for (const endpoint of endpoints) endpoint.state = true;
  }
  expect((await anonymous("/api/products")).status).toBe(200);
});

describe("a fuzz of every operation of the OpenAPI document", () => {
  it("gets no answer of 500, and leaves the node ready and serving", async () => {
    const doc = await json<OpenApiDocument>(await anonymous("/api/openapi.json"));
    const requests = hostileRequests(doc);
    const operations = new Set(requests.map((request) => request.operation));
    expect(operations.size).toBe(Object.values(doc.paths).flatMap((ops) => Object.keys(ops)).length);

    const failures: string[] = [];
    const statuses = new Map<number, number>();
    for (const request of requests) {
      const res = await fetch(`${node.base}${request.url}`, {
        method: request.method,
        headers: {
          authorization: `Bearer ${node.token}`,
          "idempotency-key": `fuzz-${statuses.size}-${failures.length}-${Math.random()}`,
          ...(request.contentType ? { "content-type": request.contentType } : {}),
        },
        body: request.body,
        signal: AbortSignal.timeout(15_000),
      });
      // An event stream that opened is an answer; what matters is its status.
      const text = res.headers.get("content-type")?.startsWith("text/event-stream")
        ? (await res.body?.cancel(), "")
        : await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500 || (request.method !== "GET" && res.status < 400)) {
        failures.push(
          `${request.method} ${request.url.slice(0, 120)} (${request.variant}): ${res.status} ${text.slice(0, 200)}`,
        );
      }
    }
    // No hostile request is our fault, and none that would write was taken.
    expect(failures).toEqual([]);

    const ready = await anonymous("/health/ready");
    expect(ready.status).toBe(200);
    expect((await anonymous("/api/products")).status).toBe(200);
    expect((await send("GET", "/api/auth/me")).status).toBe(200);
  });
});
