import { ORDER_STATUSES, canTransition, type OrderStatus } from "../../contracts/orders";
import { transition } from "../../lib/order-status";

describe("order status transitions", () => {
  const legal: [OrderStatus, OrderStatus][] = [
    ["PENDING", "PAID"],
    ["PENDING", "CANCELLED"],
    ["PENDING", "FAILED"],
    ["PAID", "SHIPPED"],
    ["PAID", "COMPENSATED"],
    ["PAID", "FAILED"],
    ["SHIPPED", "COMPLETED"],
  ];

  it("allows exactly the lifecycle's moves", () => {
    for (const from of ORDER_STATUSES) {
      for (const to of ORDER_STATUSES) {
        const expected = legal.some(([a, b]) => a === from && b === to);
        expect([from, to, canTransition(from, to)]).toEqual([from, to, expected]);
      }
    }
  });

  it("refuses an illegal move with 409 naming the allowed ones", () => {
    expect(transition("PENDING", "PAID")).toBe("PAID");
    expect(() => transition("SHIPPED", "CANCELLED")).toThrow(
      expect.objectContaining({
        code: 409,
        data: expect.objectContaining({ reason: "INVALID_TRANSITION", allowed: ["COMPLETED"] }),
      }),
    );
    expect(() => transition("CANCELLED", "PAID")).toThrow(expect.objectContaining({ code: 409 }));
  });
});
