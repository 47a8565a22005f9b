/**
 * The short version of `npm run chaos` (bench/chaos.ts): 120 orders at 10/s through a four-node cluster on its own
 * nats-server and PostgreSQL while the gateway, the orders/saga node, the participants and the audit node are each
 * SIGKILLed and restarted, then NATS and PostgreSQL restarted. Every accepted order ends, none is charged twice or
 * kept unpaid, none misses its audit records, and what was refused was refused as an outage (5xx, 429), never as
 * the client's mistake (a 404 or 422 while a service was gone).
 */
import { ALL_FAULTS, chaosTable, runChaos } from "../../bench/chaos";

it("ends every accepted order with its money and audit trail right through a kill of every part", async () => {
  const result = await runChaos({ orders: 120, rate: 10, faults: ALL_FAULTS, drainSeconds: 120, log: () => undefined });
  // The table in the failure message says what went wrong where.
  const table = chaosTable(result);
  expect({ struck: result.faults.map((fault) => fault.fault), table }).toEqual({ struck: ALL_FAULTS, table });
  expect(result.accepted).toBeGreaterThan(0);
  expect({
    stuck: result.stuck,
    doubleCharged: result.doubleCharged,
    refundsWithoutCharge: result.refundsWithoutCharge,
    auditMissing: result.auditMissing,
    table,
  }).toEqual({ stuck: 0, doubleCharged: 0, refundsWithoutCharge: 0, auditMissing: 0, table });
  expect(result.final).toBe(result.accepted);
  // An outage is never the client's fault: a refused order is a 5xx (503 unavailable, 504 timed out) or a 429, or no
  // answer while the gateway is down; never a 4xx that tells the client its request was wrong.
  const notAnOutage = Object.keys(result.refusedBy).filter((why) => !/^(5\d\d|429) |^no answer$/.test(why));
  expect({ notAnOutage, table }).toEqual({ notAnOutage: [], table });
}, 480_000);
