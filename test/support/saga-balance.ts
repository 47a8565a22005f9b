/** What every saga run must leave behind, whatever crashed meanwhile: checked by the saga fault suites. */
import type { Client } from "pg";
import { isFinal, type OrderStatus } from "../../contracts/orders";

/** Clients of the databases the order saga touches. */
export type SagaDatabases = Record<"orders" | "sagas" | "payments" | "products", Client>;

/**
 * The invariants of every run: one saga per order, all ended, no double charge, no refund without a charge, and the
 * stock of exactly the completed orders taken for good (every other reservation released, refused or voided).
 */
export async function expectSagasBalanced(db: SagaDatabases, ids: string[]) {
  const { rows: statuses } = await db.orders.query<{ id: string; status: OrderStatus; total_amount: string }>(
    "SELECT id, status, total_amount FROM orders WHERE id = ANY($1)",
    [ids],
  );
  expect(statuses.filter((row) => isFinal(row.status))).toHaveLength(ids.length);
  const { rows: sagas } = await db.sagas.query("SELECT status FROM sagas WHERE subject_id = ANY($1)", [ids]);
  expect(sagas).toHaveLength(ids.length);
  expect(sagas.filter((saga) => saga.status === "COMPLETED" || saga.status === "COMPENSATED")).toHaveLength(ids.length);
  const { rows: charges } = await db.payments.query<{ order_id: string; status: string; amount: string }>(
    "SELECT order_id, status, amount FROM payments WHERE order_id = ANY($1) AND status IN ('CHARGED', 'REFUNDED')",
    [ids],
  );
  // At most one charge per order (a repeated charge returns the first), and every refund has its charge's amount.
  expect(new Set(charges.map((charge) => charge.order_id)).size).toBe(charges.length);
  const charged = charges.reduce((sum, charge) => sum + Number(charge.amount), 0);
  const refunded = charges
    .filter((charge) => charge.status === "REFUNDED")
    .reduce((sum, charge) => sum + Number(charge.amount), 0);
  const completed = statuses
    .filter((row) => row.status === "COMPLETED")
    .reduce((sum, row) => sum + Number(row.total_amount), 0);
  expect(charged - refunded).toBe(completed);
  const { rows: taken } = await db.products.query<{ order_id: string; status: string }>(
    "SELECT order_id, status FROM stock_reservations WHERE order_id = ANY($1) AND status IN ('RESERVED', 'COMMITTED')",
    [ids],
  );
  const byOrder = (a: { order_id: string }, b: { order_id: string }) => a.order_id.localeCompare(b.order_id);
  expect(taken.sort(byOrder)).toEqual(
    statuses
      .filter((row) => row.status === "COMPLETED")
      .map((row) => ({ order_id: row.id, status: "COMMITTED" }))
      .sort(byOrder),
  );
  return statuses;
}
