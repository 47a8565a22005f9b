import { INCIDENT_LIFECYCLE } from "../../contracts/alerts";
import { DEAD_LETTER_LIFECYCLE } from "../../contracts/dead-letters";
import { canMove, isFinalIn, movesInto, type Lifecycle } from "../../contracts/lifecycle";
import { ORDER_TRANSITIONS } from "../../contracts/orders";
import { PAYMENT_LIFECYCLE } from "../../contracts/payments";

const LIFECYCLES: Record<string, Lifecycle<string>> = {
  order: ORDER_TRANSITIONS,
  payment: PAYMENT_LIFECYCLE,
  incident: INCIDENT_LIFECYCLE,
  "dead letter": DEAD_LETTER_LIFECYCLE,
};

describe("status lifecycles", () => {
  it.each(Object.entries(LIFECYCLES))("%s: every move leads to a status of the table", (_name, lifecycle) => {
    const statuses = Object.keys(lifecycle);
    for (const targets of Object.values(lifecycle)) for (const to of targets) expect(statuses).toContain(to);
  });

  it("refunds only a charged payment; declined, refunded and voided ones are final", () => {
    expect(movesInto(PAYMENT_LIFECYCLE, "REFUNDED")).toEqual(["CHARGED"]);
    expect(canMove(PAYMENT_LIFECYCLE, "VOIDED", "REFUNDED")).toBe(false);
    expect(Object.keys(PAYMENT_LIFECYCLE).filter((status) => isFinalIn(PAYMENT_LIFECYCLE, status as never))).toEqual([
      "DECLINED",
      "REFUNDED",
      "VOIDED",
    ]);
  });

  it("resolves only a firing incident, once", () => {
    expect(movesInto(INCIDENT_LIFECYCLE, "RESOLVED")).toEqual(["FIRING"]);
    expect(isFinalIn(INCIDENT_LIFECYCLE, "RESOLVED")).toBe(true);
  });

  it("replays only a letter not resolved or discarded, and discards anything not discarded yet, for good", () => {
    expect(movesInto(DEAD_LETTER_LIFECYCLE, "REPLAYED")).toEqual(["PENDING", "REPLAYED"]);
    expect(movesInto(DEAD_LETTER_LIFECYCLE, "RESOLVED")).toEqual(["PENDING", "REPLAYED"]);
    expect(movesInto(DEAD_LETTER_LIFECYCLE, "DISCARDED")).toEqual(["PENDING", "REPLAYED", "RESOLVED"]);
    expect(isFinalIn(DEAD_LETTER_LIFECYCLE, "DISCARDED")).toBe(true);
  });

  it("reads an order's guards off its table", () => {
    expect(movesInto(ORDER_TRANSITIONS, "FAILED")).toEqual(["PENDING", "PAID"]);
    expect(movesInto(ORDER_TRANSITIONS, "COMPLETED")).toEqual(["SHIPPED"]);
  });
});
