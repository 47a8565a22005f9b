/**
 * The servers the gateway benchmarks compare, each started as its own process by `bench/run.ts`:
 * - `bare`: Node's `http` server calling the handler directly;
 * - `gateway`: a node as `npm start` builds it (moleculer-web, validation, fault tolerance, metrics and tracing on),
 *   with the same handler as a public action behind `GET /api/bench/item`;
 * - `fastify-jwt`: Fastify verifying the bearer token exactly as the gateway does (same library function, same
 *   public key, ES256, issuer and audience pinned), then calling the handler;
 * - `gateway-auth`: the gateway with the auth service, the same handler behind an action that needs an
 *   authenticated caller (token verification, caller resolution and the permissions middleware on every request);
 * - `gateway-data`: api, auth, products and orders in one node, for the data service benchmarks (bench/data.ts);
 * - `gateway-edge` and `products-node`: api and auth in one node, products in another, over the transporter
 *   `TRANSPORTER` names, for the same product list with the data service on a second node;
 * - `audit-on`: api, auth, products, audit and logs in one node with the broker's middlewares and log shipping as
 *   `npm start` has them (the transporter comes from `TRANSPORTER`), for the audit overhead benchmark (bench/audit.ts);
 * - `audit-off`: the same node without the audit and logs services, the Audit middleware and log shipping.
 */
import { createServer } from "node:http";
import Fastify from "fastify";
import { Pool } from "pg";
import { PRODUCT_PAGE_SQL } from "./product-page";
import type { Context, ServiceSchema } from "moleculer";
import { createNode, waitUntilReady, type NodeOptions } from "../bin/node";
import { loadConfig, type Config } from "../lib/config";
import { publicKeyObject, verifyAccessToken, type PublicJwk } from "../lib/signing-keys";
import { brokerOptions } from "../moleculer.config";

/** The work every server does per request: build a small catalog entry and serialise it. */
export function catalogItem(id: string) {
  return { id, sku: `SKU-${id}`, name: "Benchmark widget", price: { amount: 1299, currency: "EUR" }, stock: 7 };
}

const benchService = (permissions: "public" | "authenticated"): ServiceSchema => ({
  name: "bench",
  actions: {
    item: {
      rest: "GET /item",
      permissions,
      params: { id: { type: "string", max: 64, default: "1" } },
      handler(ctx: Context<{ id: string }>) {
        return catalogItem(ctx.params.id);
      },
    },
  },
});

/** The node options of the `audit-off` target: the broker's middlewares without the audit intake, exactly one fewer. */
function withoutAudit(cfg: Config): NodeOptions {
  const all = brokerOptions(cfg).middlewares ?? [];
  const middlewares = all.filter((m) => typeof m === "string" || m.name !== "Audit");
  if (middlewares.length !== all.length - 1) throw new Error("Expected exactly one broker middleware named Audit");
  return { broker: { middlewares } };
}

async function startGateway(
  port: number,
  services: string,
  benchPermissions?: "public" | "authenticated",
  nodeOptions: (cfg: Config) => NodeOptions = () => ({}),
) {
  const cfg = loadConfig({
    ...process.env,
    SERVICES: services,
    PORT: String(port),
    METRICS_PORT: "0",
    LOG_LEVEL: "error",
    TRACING_EXPORTER: "none",
    // No limit may throttle the load generator's single address.
    RATE_LIMIT_IP: "100000000",
    RATE_LIMIT_USER: "100000000",
    // No saga engine runs here, so no order ever ends: backpressure would refuse the order bench's POSTs.
    ORDERS_MAX_BACKLOG: "10000000",
    DATABASE_URL: process.env.DATABASE_URL ?? "postgres://unused@127.0.0.1/unused",
  });
  const broker = await createNode(cfg, nodeOptions(cfg));
  if (benchPermissions) broker.createService(benchService(benchPermissions));
  await broker.start();
  await waitUntilReady(broker);
}

function startFastify(port: number): Promise<string> {
  // The key object is built once, as a Fastify service would keep it; the ES256 check runs on every request.
  const key = publicKeyObject(JSON.parse(process.env.BENCH_JWK ?? "null") as PublicJwk);
  const settings = {
    issuer: process.env.AUTH_ISSUER ?? "aicunet",
    audience: process.env.AUTH_AUDIENCE ?? "aicunet-api",
  };
  // With BENCH_PRODUCTS_URL, /products answers a page of the products table as the gateway's GET /api/products does.
  const products = process.env.BENCH_PRODUCTS_URL
    ? new Pool({ connectionString: process.env.BENCH_PRODUCTS_URL, max: 10 })
    : null;
  const app = Fastify({ logger: false });
  app.addHook("onRequest", async (request, reply) => {
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? "");
    try {
      if (!bearer) throw new Error("no token");
      verifyAccessToken(bearer[1], key, settings);
    } catch {
      return reply.code(401).send({ error: "unauthorized" });
    }
  });
  app.get<{ Querystring: { id?: string } }>("/item", async (request) => catalogItem(request.query.id ?? "1"));
  app.get<{ Querystring: { pageSize?: string } }>("/products", async (request) => {
    const pageSize = Math.min(100, Number(request.query.pageSize ?? 20));
    const { rows } = await products!.query<ProductRow>(PRODUCT_PAGE_SQL, [pageSize]);
    const total = rows.length > 0 ? Number(rows[0].full_count) : 0;
    return {
      rows: rows.map((row) => ({
        id: row.id,
        sku: row.sku,
        name: row.name,
        description: row.description,
        price: { amount: Number(row.price_amount), currency: row.currency },
        stock: row.stock,
        active: row.active,
        version: row.version,
        createdAt: row.created_at.toISOString(),
        updatedAt: row.updated_at.toISOString(),
      })),
      total,
      page: 1,
      pageSize,
      totalPages: Math.ceil(total / pageSize),
    };
  });
  return app.listen({ port, host: "127.0.0.1" });
}

interface ProductRow {
  id: string;
  sku: string;
  name: string;
  description: string | null;
  price_amount: string;
  currency: string;
  stock: number;
  active: boolean;
  version: number;
  created_at: Date;
  updated_at: Date;
  full_count: string;
}

async function main(): Promise<void> {
  const [mode, port] = [process.argv[2], Number(process.argv[3])];
  switch (mode) {
    case "bare":
      await new Promise<void>((resolve) =>
        createServer((req, res) => {
          const id = new URL(req.url ?? "/", "http://localhost").searchParams.get("id") ?? "1";
          res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
          res.end(JSON.stringify(catalogItem(id)));
        }).listen(port, "127.0.0.1", resolve),
      );
      break;
    case "gateway":
      await startGateway(port, "api", "public");
      break;
    case "gateway-auth":
      await startGateway(port, "api,auth", "authenticated");
      break;
    case "gateway-data":
      await startGateway(port, "api,auth,products,orders");
      break;
    case "gateway-edge":
      await startGateway(port, "api,auth");
      break;
    case "products-node":
      await startGateway(port, "products");
      break;
    case "audit-on":
      // The audit trail and the log store, as npm start runs them.
      await startGateway(port, "api,auth,products,audit,logs");
      break;
    case "audit-off":
      // Neither: no audit intake or service, no log shipping, no log store.
      process.env.LOG_SHIP_LEVEL = "off";
      await startGateway(port, "api,auth,products", undefined, withoutAudit);
      break;
    case "fastify-jwt":
      await startFastify(port);
      break;
    default:
      throw new Error(`Unknown target ${mode}`);
  }
  console.log("listening");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
