/**
 * Reading orders: the list and one order with its saga, from the replica once it has caught up with the caller's
 * last write (else the primary), and the methods that load orders with their lines for every other part.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { isFinal, ORDER_STATUSES, type Order, type OrderPage, type OrderWithSaga } from "../contracts/orders";
import type { Saga } from "../contracts/sagas";
import { selectPage } from "../lib/database";
import { NotFoundError } from "../lib/errors";
import type { OrdersMeta } from "../lib/order-requests";
import { toOrder, type LineRow, type OrderRow } from "../lib/order-rows";
import { pageParams } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { asSystem, ownerScope } from "../lib/permissions";
import type { DbMethods, DbServiceThis, DbSettings, QueryOptions, ReadFrom } from "./db.mixin";

const MAX_PAGE_SIZE = 100;

const READ = ["orders:read:any", "orders:read:own"];

export interface OrdersReadMethods {
  loadOrders(rows: OrderRow[], from: QueryOptions): Promise<Order[]>;
  findOrder(id: string, owner: string | undefined, from: ReadFrom): Promise<Order>;
}

type ReadsThis = Service<DbSettings> & DbServiceThis & DbMethods & OrdersReadMethods;

const listParams = paramsSchema({
  ...pageParams(MAX_PAGE_SIZE, 20),
  status: { type: "enum", values: [...ORDER_STATUSES], optional: true },
  customerId: { type: "uuid", optional: true },
  from: { type: "date", convert: true, optional: true },
  to: { type: "date", convert: true, optional: true },
  $$strict: true,
});
const idParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });

export function ordersReadsMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, OrdersReadMethods, object, ReadsThis>> = {
    actions: {
      /** A page of orders, newest first: a customer's own, or everyone's with `orders:read:any`. */
      list: {
        rest: "GET /",
        list: "page",
        permissions: READ,
        params: listParams,
        async handler(this: ReadsThis, ctx: Context<ParamsOf<typeof listParams>, OrdersMeta>): Promise<OrderPage> {
          const { page, pageSize, status, from, to } = ctx.params;
          const owner = ownerScope(ctx.meta.caller, "orders:read:any");
          const customerId = owner ?? ctx.params.customerId ?? null;
          const filters = `($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR created_at >= $3) AND ($4::timestamptz IS NULL OR created_at < $4)`;
          const bind = [customerId, status ?? null, from ?? null, to ?? null];
          const source = await this.readYourWrites();
          const query = { table: "orders", where: filters, order: "created_at DESC, id", bind, ...source };
          const found = await selectPage<OrderRow, OrderRow>(this.rows, query, page, pageSize, (row) => row);
          return { ...found, rows: await this.loadOrders(found.rows, source) };
        },
      },

      /**
       * One order with its saga (steps and their timeline; null when there is none or the sagas service does not
       * answer): a customer's own only (another's is 404), anyone's with `orders:read:any`.
       */
      get: {
        rest: "GET /:id",
        permissions: READ,
        params: idParams,
        async handler(this: ReadsThis, ctx: Context<ParamsOf<typeof idParams>, OrdersMeta>): Promise<OrderWithSaga> {
          const owner = ownerScope(ctx.meta.caller, "orders:read:any");
          const order = await this.findOrder(ctx.params.id, owner, await this.readYourWrites());
          const saga = await this.broker
            .call<Saga | null, object>(
              "sagas.forSubject",
              { definition: "order", subjectId: order.id },
              { ...asSystem(ctx), timeout: 2000, retries: 0 },
            )
            .catch(() => null);
          // A saga ends only after its last step has moved the order: an ended saga beside an unfinished order is a
          // read of the order taken just before that step (or on a lagging replica). Read it again from the primary,
          // so an answer never shows the order behind its saga.
          const sagaEnded = saga?.status === "COMPLETED" || saga?.status === "COMPENSATED";
          if (sagaEnded && !isFinal(order.status)) {
            return { ...(await this.findOrder(order.id, owner, { replica: false })), saga };
          }
          return { ...order, saga };
        },
      },
    },

    methods: {
      async loadOrders(this: ReadsThis, rows: OrderRow[], from: QueryOptions): Promise<Order[]> {
        if (rows.length === 0) return [];
        const lines = await this.rows<LineRow>(
          "SELECT * FROM order_lines WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, line_no",
          [rows.map((row) => row.id)],
          from,
        );
        return rows.map((row) =>
          toOrder(
            row,
            lines.filter((line) => line.order_id === row.id),
          ),
        );
      },

      async findOrder(this: ReadsThis, id: string, owner: string | undefined, from: ReadFrom): Promise<Order> {
        const rows = await this.rows<OrderRow>(
          "SELECT * FROM orders WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2)",
          [id, owner ?? null],
          from,
        );
        if (rows.length === 0) throw new NotFoundError("Order", id);
        return (await this.loadOrders(rows, from))[0];
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
