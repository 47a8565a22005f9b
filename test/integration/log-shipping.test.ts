/**
 * Log shipping across processes over a real NATS JetStream: the gateway node's records reach the log store on
 * another node, and records written while the log store is killed are delivered once it is back.
 */
import type { LogPage } from "../../contracts/logs";
import { login } from "../../support/api";
import {
  dropScopeDatabases,
  isolation,
  json,
  nodeEnv,
  type NodeProcess,
  startNodeProcess,
  testNatsUrl,
  waitFor,
} from "../../support/nodes";
import { freePort } from "../../support/servers";

const scope = isolation();
let env: Record<string, string>;
let gateway: NodeProcess;
let store: NodeProcess;
let base: string;
let token: string;

const startStore = () => startNodeProcess({ ...env, SERVICES: "logs", NODE_ID: "log-store" });

async function shipped(requestId: string): Promise<LogPage["rows"]> {
  return waitFor(
    async () => {
      const res = await fetch(`${base}/api/logs?requestId=${requestId}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (res.status !== 200) return undefined;
      const page = await json<LogPage>(res);
      return page.total > 0 ? page.rows : undefined;
    },
    30_000,
    `the records of ${requestId}`,
  );
}

beforeAll(async () => {
  env = nodeEnv(scope, { TRANSPORTER: testNatsUrl() });
  const port = await freePort();
  [gateway, store] = await Promise.all([
    startNodeProcess({ ...env, SERVICES: "api,auth", NODE_ID: "gateway", PORT: String(port) }),
    startStore(),
  ]);
  base = `http://127.0.0.1:${port}`;
  token = await login(base);
}, 90_000);

afterAll(async () => {
  await Promise.all([gateway?.stop("SIGKILL"), store?.stop("SIGKILL")]);
  await dropScopeDatabases(scope.prefix);
});

/** The gateway's request id of each labelled request (it makes its own). */
const requestIds = new Map<string, string>();

const request = async (label: string) => {
  const res = await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } });
  requestIds.set(label, res.headers.get("x-request-id")!);
  return res;
};

it("stores the gateway node's records on the log store node", async () => {
  expect((await request("ship-before")).status).toBe(200);
  const rows = await shipped(requestIds.get("ship-before")!);
  expect(rows).toEqual([expect.objectContaining({ nodeId: "gateway", module: "api", message: "access" })]);
});

it("delivers the records written while the log store was down once it is back", async () => {
  await store.stop("SIGKILL");
  for (let i = 0; i < 5; i++) expect((await request(`ship-down-${i}`)).status).toBe(200);
  store = await startStore();
  for (let i = 0; i < 5; i++) {
    const requestId = requestIds.get(`ship-down-${i}`)!;
    expect(await shipped(requestId)).toEqual([
      expect.objectContaining({ nodeId: "gateway", requestId, message: "access" }),
    ]);
  }
}, 90_000);
