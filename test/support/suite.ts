/**
 * One node for a test file's suite: started in this process before its tests, in a scope of its own, with the gateway
 * on a free port and the admin logged in; stopped after them and its databases dropped.
 */
import type { BrokerOptions, ServiceBroker, ServiceSchema } from "moleculer";
import type { Client } from "pg";
import type { Config, ServiceName } from "../../lib/config";
import { databaseUrlFor, ErrorHandledClient } from "../../lib/database";
import { gatewayClient, login, type GatewayClient } from "../../support/api";
import { dropScopeDatabases, isolation, testConfig } from "../../support/nodes";
import { freePort } from "../../support/servers";
import { startInProcessNode } from "./nodes";

export interface SuiteNode extends GatewayClient {
  scope: { prefix: string; namespace: string };
  broker: ServiceBroker;
  cfg: Config;
  base: string;
  /** The admin's access token, which requests carry unless they name another. */
  token: string;
  /** A connected client of one of the node's databases, closed before its databases are dropped. */
  database(service: ServiceName): Promise<Client>;
}

/**
 * Registers the `beforeAll` that starts the node (configured by `env`, `PORT` aside, with `services` added) and the
 * `afterAll` that stops it. `env` may be a function, called as the node starts, for values earlier hooks find out
 * (a server's URL); the fields are set once `beforeAll` has run. The suite's own `afterAll` hooks run after
 * this one's (jest runs them in the order they were declared), so it closes the clients `database` gave out.
 */
export function withNode(
  env: Record<string, string> | (() => Record<string, string>),
  {
    services = [],
    broker = { logger: false },
    timeoutMs,
  }: {
    services?: ServiceSchema[];
    broker?: Partial<BrokerOptions>;
    /** How long the node may take to start, when jest's default is not enough. */
    timeoutMs?: number;
  } = {},
): SuiteNode {
  const clients: Client[] = [];
  const node = {
    scope: isolation(),
    token: "",
    async database(service: ServiceName) {
      const client = new ErrorHandledClient({ connectionString: databaseUrlFor(service, node.cfg) });
      await client.connect();
      clients.push(client);
      return client;
    },
  } as SuiteNode;
  Object.assign(node, gatewayClient(node));

  beforeAll(async () => {
    const port = await freePort();
    node.cfg = testConfig(node.scope, { ...(typeof env === "function" ? env() : env), PORT: String(port) });
    node.broker = await startInProcessNode(node.cfg, services, broker);
    node.base = `http://127.0.0.1:${port}`;
    node.token = await login(node.base);
  }, timeoutMs);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.end()));
    await node.broker?.stop();
    await dropScopeDatabases(node.scope.prefix);
  });

  return node;
}
