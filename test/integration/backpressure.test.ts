/**
 * Backpressure inside: a consumer whose work calls an action behind a tiny bulkhead (one call at a time, one waiting)
 * gets "Queue is full" for a burst while the test holds its one slot. Those refusals are the node saying it is busy, not the message failing:
 * every message is processed in the end, none is dead-lettered, and the policy's attempts (two here) are not what
 * decides it. One node with the in-memory channels (the embedded default) and the real PostgreSQL; the exec service's
 * rules are the consumer, as a user would set one up.
 */
import type { Context, ServiceSchema } from "moleculer";
import { SYSTEM_CALLER } from "../../lib/permissions";
import type { DeadLetterPage } from "../../contracts/dead-letters";
import type { Rule } from "../../contracts/exec";
import { json, waitFor } from "../../support/nodes";
import { withNode } from "../support/suite";

/** Orders the narrow action has handled. */
const handled = new Set<string>();
const narrowService: ServiceSchema = {
  name: "narrow",
  actions: {
    handle: {
      triggerable: true,
      // A queue of one: Moleculer reads a maxQueueSize of 0 as "no bound".
      bulkhead: { enabled: true, concurrency: 1, maxQueueSize: 1 },
      params: { orderId: { type: "uuid" }, holdMs: { type: "number", optional: true } },
      async handler(ctx: Context<{ orderId: string; holdMs?: number }>) {
        await new Promise((resolve) => setTimeout(resolve, ctx.params.holdMs ?? 20));
        handled.add(ctx.params.orderId);
      },
    },
  },
};

const node = withNode(
  {
    SERVICES: "api,auth,products,orders,exec,dlq",
    // Two attempts, 20 ms apart: a burst of refusals counted as attempts would dead-letter most of the burst.
    DELIVERY_MAX_ATTEMPTS: "2",
    DELIVERY_RETRY_DELAY: "20",
  },
  { services: [narrowService] },
);
const { send, placeOrder } = node;

it("processes every message of a burst that a full bulkhead refuses, dead-lettering none", async () => {
  const product = await node.createProduct({
    sku: "BP-1",
    name: "Backpressure widget",
    price: { amount: 100, currency: "EUR" },
    stock: 1000,
  });
  const rule = await json<Rule>(
    await send("POST", "/api/exec/rules", {
      name: "Narrow rule",
      event: "order.created",
      condition: [{ path: "$.payload.order.shippingAddress.name", op: "eq", value: "NARROW" }],
      action: "narrow.handle",
      params: { orderId: "$.payload.order.id" },
    }),
  );
  expect(rule.id).toEqual(expect.any(String));
  // The slot and the queue place are taken for a while, so every delivery of the burst is refused at first
  // ("Queue is full").
  const hold = Promise.all(
    ["00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000001"].map((orderId) =>
      node.broker.call("narrow.handle", { orderId, holdMs: 2000 }, { meta: { caller: SYSTEM_CALLER } }),
    ),
  );
  const orders: string[] = [];
  for (let i = 0; i < 8; i += 1) orders.push((await placeOrder(product.id, "NARROW")).id);
  const deadLetters = async () => (await json<DeadLetterPage>(await send("GET", "/api/dlq?group=exec"))).rows;
  // Ends as soon as one is dead-lettered (the failure) or all are handled.
  await waitFor(
    async () => (orders.every((id) => handled.has(id)) || (await deadLetters()).length > 0 ? true : undefined),
    30_000,
    "every order handled or one dead-lettered",
  );
  expect(await deadLetters()).toEqual([]);
  expect(orders.filter((id) => !handled.has(id))).toEqual([]);
  await hold;
});
