import { EventCatalogue, createEnvelope } from "../../lib/events";

const catalogue = new EventCatalogue([
  {
    type: "order.created",
    version: 1,
    payload: { orderId: { type: "uuid" }, total: { type: "number", integer: true, min: 0 }, $$strict: true },
  },
]);
const context = { source: "orders", correlationId: "req-1" };
const orderId = "7d1c3a52-0c4e-4a8a-9f53-2b8f1b8b1c11";

describe("event envelopes", () => {
  it("wraps a payload with id, type, version, time, source and correlation", () => {
    const envelope = createEnvelope("order.created", { orderId, total: 5 }, { ...context, causationId: "cmd-9" });
    expect(envelope).toMatchObject({
      type: "order.created",
      version: 1,
      source: "orders",
      correlationId: "req-1",
      causationId: "cmd-9",
    });
    expect(envelope.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(envelope.occurredAt)).not.toBeNaN();
  });

  it("accepts a registered event whose payload matches", async () => {
    await expect(
      catalogue.validate(createEnvelope("order.created", { orderId, total: 5 }, context)),
    ).resolves.toBeUndefined();
  });

  it("rejects an unregistered type or version, naming the field", async () => {
    await expect(catalogue.validate(createEnvelope("order.shipped", {}, context))).rejects.toMatchObject({
      code: 422,
      data: [{ field: "type", type: "unregisteredEvent" }],
    });
    await expect(
      catalogue.validate(createEnvelope("order.created", { orderId, total: 5 }, { ...context, version: 2 })),
    ).rejects.toMatchObject({ code: 422 });
  });

  it("rejects a payload that does not match, with the offending payload fields", async () => {
    const bad = createEnvelope("order.created", { orderId: "nope", total: -1, extra: true }, context);
    await expect(catalogue.validate(bad)).rejects.toMatchObject({ code: 422 });
    const fields = await catalogue
      .validate(bad)
      .catch((err: { data: { field: string }[] }) => err.data.map((problem) => problem.field));
    expect(fields).toEqual(expect.arrayContaining(["payload.orderId", "payload.total"]));
  });

  it("rejects a malformed envelope", async () => {
    const envelope = {
      ...createEnvelope("order.created", { orderId, total: 5 }, context),
      id: "x",
      occurredAt: "yesterday",
    };
    const fields = await catalogue
      .validate(envelope)
      .catch((err: { data: { field: string }[] }) => err.data.map((problem) => problem.field));
    expect(fields).toEqual(expect.arrayContaining(["id", "occurredAt"]));
  });
});
