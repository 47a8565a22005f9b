/**
 * The first admin on a fresh auth database: two nodes starting at once create one, and an existing account with
 * ADMIN_EMAIL is never promoted (the node refuses to start). Real PostgreSQL, nodes in their own processes.
 */
import { Client } from "pg";
import {
  dropScopeDatabases,
  isolation,
  nodeEnv,
  type NodeProcess,
  scopedDatabaseUrl,
  startNodeProcess,
  TEST_ADMIN,
} from "../../support/nodes";

const scope = isolation();
const nodes: NodeProcess[] = [];
let authDb: Client | undefined;

afterAll(async () => {
  await authDb?.end();
  await Promise.all(nodes.map((node) => node.stop("SIGKILL")));
  await dropScopeDatabases(scope.prefix);
});

it("is created once by two nodes that start together on a fresh database", async () => {
  const env = nodeEnv(scope, { SERVICES: "auth" });
  nodes.push(...(await Promise.all([startNodeProcess(env), startNodeProcess(env)])));
  authDb = new Client({ connectionString: scopedDatabaseUrl(scope.prefix, "auth") });
  await authDb.connect();
  const { rows } = await authDb.query("SELECT email, roles FROM users WHERE 'admin' = ANY(roles)");
  expect(rows).toEqual([{ email: TEST_ADMIN.email, roles: ["admin"] }]);
});

it("is never an existing account promoted: with no admin left, a node refuses to start on that email", async () => {
  await authDb!.query(
    "INSERT INTO users (id, email, display_name, password_hash, roles) VALUES (gen_random_uuid(), 'taken@example.com', 'Someone', 'x', '{customer}')",
  );
  await authDb!.query("UPDATE users SET roles = '{customer}' WHERE 'admin' = ANY(roles)");
  await expect(
    startNodeProcess(nodeEnv(scope, { SERVICES: "auth", ADMIN_EMAIL: "taken@example.com" })),
  ).rejects.toThrow(/ADMIN_EMAIL taken@example.com belongs to an account that is not one/);
  const { rows } = await authDb!.query("SELECT roles FROM users WHERE email = 'taken@example.com'");
  expect(rows).toEqual([{ roles: ["customer"] }]);
});
