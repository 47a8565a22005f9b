/**
 * Durable channels on a three-node JetStream cluster (three `nats-server -js` processes routed together, as the k8s
 * StatefulSet runs them): with JETSTREAM_REPLICAS=3 every stream the platform creates has three copies, and killing
 * the NATS node that leads the stream loses no event, committed before or after.
 */
import { connect } from "nats";
import { Client } from "pg";
import type { Order } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import { gatewayClient, login, type GatewayTarget } from "../../support/api";
import {
  dropScopeDatabases,
  isolation,
  nodeEnv,
  type NodeProcess,
  scopedDatabaseUrl,
  startNodeProcess,
  waitFor,
} from "../../support/nodes";
import { freePort, type NatsServer, startNatsCluster } from "../../support/servers";

const scope = isolation();
let cluster: NatsServer[];
let producer: NodeProcess;
let probe: NodeProcess;
let product: Product;
let probeDb: Client;

/** Waits until the cluster has elected its JetStream meta leader and answers JetStream requests. */
async function jetStreamReady(url: string) {
  await waitFor(
    async () => {
      const connection = await connect({ servers: url });
      try {
        await (await connection.jetstreamManager()).getAccountInfo();
        return true;
      } finally {
        await connection.close();
      }
    },
    30_000,
    "the JetStream cluster",
  );
}

const api: GatewayTarget = { base: "", token: "" };
const client = gatewayClient(api);
const placeOrder = (tag: string) => client.placeOrder(product.id, tag);

const effectsOf = async (orders: Order[]) =>
  Number(
    (await probeDb.query("SELECT count(*) FROM effects WHERE order_id = ANY($1)", [orders.map((order) => order.id)]))
      .rows[0].count,
  );

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  await jetStreamReady(cluster[0].url);
  // The platform's clients all connect to the first server; the stream's copies live on all three.
  const env = nodeEnv(scope, { TRANSPORTER: cluster[0].url, JETSTREAM_REPLICAS: "3", DELIVERY_ACK_WAIT: "2000" });
  const port = await freePort();
  [producer, probe] = await Promise.all([
    startNodeProcess({ ...env, SERVICES: "api,auth,products,orders", NODE_ID: "producer", PORT: String(port) }),
    startNodeProcess(
      { ...env, NODE_ID: "probe-node", PROBE_DATABASE_URL: scopedDatabaseUrl(scope.prefix, "probe") },
      { script: "test/support/probe-node.ts" },
    ),
  ]);
  api.base = `http://127.0.0.1:${port}`;
  api.token = await login(api.base);
  product = await client.createProduct({
    sku: "JSC-1",
    name: "Replicated widget",
    price: { amount: 300, currency: "EUR" },
    stock: 100_000,
  });
  probeDb = new Client({ connectionString: scopedDatabaseUrl(scope.prefix, "probe") });
  await probeDb.connect();
}, 120_000);

afterAll(async () => {
  await probeDb?.end();
  await Promise.all([producer?.stop("SIGKILL"), probe?.stop("SIGKILL")]);
  await Promise.all((cluster ?? []).map((server) => server.stop()));
  await dropScopeDatabases(scope.prefix);
});

it("keeps three copies of each stream, and loses no event when a NATS node dies", async () => {
  const before: Order[] = [];
  for (let i = 0; i < 5; i++) before.push(await placeOrder(`JSC-BEFORE-${i}`));
  await waitFor(async () => ((await effectsOf(before)) === 5 ? true : undefined), 30_000, "the first effects");

  const connection = await connect({ servers: cluster[0].url });
  const jsm = await connection.jetstreamManager();
  const stream = await jsm.streams.info(`${scope.namespace}_order_created`);
  expect(stream.config.num_replicas).toBe(3);
  expect(stream.cluster?.replicas ?? []).toHaveLength(2);
  await connection.close();

  // The stream's leader goes; the other two keep a majority and elect a new one. Clients connected to it move to
  // the servers the cluster told them about.
  const leader = Number(stream.cluster!.leader!.replace("nats-", ""));
  await cluster[leader].kill();
  const after: Order[] = [];
  for (let i = 0; i < 5; i++) after.push(await placeOrder(`JSC-AFTER-${i}`));
  await waitFor(async () => ((await effectsOf(after)) === 5 ? true : undefined), 45_000, "the effects after the loss");
  expect(await effectsOf([...before, ...after])).toBe(10);
}, 120_000);
