import { RESERVATION_STATUSES, perProduct, reservationSources } from "../../lib/stock-reservation";

describe("stock reservation lifecycle", () => {
  it("releases a reservation that is held or was committed by a saga now compensating, and nothing else", () => {
    expect(reservationSources("RELEASED")).toEqual(["RESERVED", "COMMITTED"]);
  });

  it("commits only a held reservation", () => {
    expect(reservationSources("COMMITTED")).toEqual(["RESERVED"]);
  });

  it("never moves a reservation into a status only its first outcome sets", () => {
    for (const first of ["RESERVED", "REJECTED", "VOIDED"] as const) expect(reservationSources(first)).toEqual([]);
    expect(RESERVATION_STATUSES).toHaveLength(5);
  });
});

describe("perProduct", () => {
  it("adds up the lines of one product and orders the products by id, the order their rows are locked in", () => {
    const a = "00000000-0000-4000-8000-00000000000a";
    const b = "00000000-0000-4000-8000-00000000000b";
    expect(
      perProduct([
        { productId: b, quantity: 2 },
        { productId: a, quantity: 1 },
        { productId: b, quantity: 3 },
      ]),
    ).toEqual([
      { productId: a, quantity: 1 },
      { productId: b, quantity: 5 },
    ]);
  });
});
