/**
 * A PostgreSQL session ended as soon as it began fails a statement, never the process. A server shutting down (a
 * restart, a failover) sends FATAL to every session, and one that has just finished its handshake can get it in the
 * same packet as the handshake's end, before whoever opened the connection listens for its errors: pg then emits an
 * 'error' nobody listens to, which Node throws at the process (this took a node down in the PostgreSQL restart test).
 * A proxy in front of the real server makes that happen on every connection: it holds the server's handshake back,
 * terminates the session as a shutdown does (`pg_terminate_backend`, FATAL 57P01), and passes the handshake and the
 * FATAL on in one write.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { Client } from "pg";
import { createSequelize, ensureDatabase, runMigrations } from "../../lib/database";
import { testDatabaseUrl } from "../../support/nodes";

const READY_FOR_QUERY = "Z".charCodeAt(0);
const BACKEND_KEY_DATA = "K".charCodeAt(0);

let proxy: Server;
let proxyUrl: string;
const terminated: number[] = [];

/** The backend's process id once the server's handshake, as far as `bytes` go, has ended; undefined before. */
function handshakeEnded(bytes: Buffer): number | undefined {
  let pid: number | undefined;
  for (let at = 0; at + 5 <= bytes.length;) {
    const type = bytes[at];
    const length = bytes.readInt32BE(at + 1);
    if (at + 1 + length > bytes.length) return undefined;
    if (type === BACKEND_KEY_DATA) pid = bytes.readInt32BE(at + 5);
    if (type === READY_FOR_QUERY) return pid;
    at += 1 + length;
  }
  return undefined;
}

function terminateAfterHandshake(client: Socket, serverUrl: URL): void {
  const server = connect(Number(serverUrl.port || 5432), serverUrl.hostname);
  const held: Buffer[] = [];
  /** The session's backend, once its handshake has ended and it is being terminated. */
  let backendPid: number | undefined;
  client.on("data", (chunk) => server.write(chunk));
  client.on("error", () => server.destroy());
  server.on("error", () => client.destroy());
  server.on("data", (chunk) => {
    held.push(chunk);
    if (backendPid !== undefined) return;
    backendPid = handshakeEnded(Buffer.concat(held));
    if (backendPid === undefined) return;
    const admin = new Client({ connectionString: testDatabaseUrl() });
    void admin
      .connect()
      .then(() => admin.query("SELECT pg_terminate_backend($1)", [backendPid]))
      .finally(() => admin.end());
  });
  // The server closes the session after its FATAL: everything it sent goes on at once, then the client's end.
  server.on("end", () => {
    if (backendPid !== undefined) terminated.push(backendPid);
    client.end(Buffer.concat(held));
  });
}

beforeAll(async () => {
  const serverUrl = new URL(testDatabaseUrl());
  proxy = createServer((socket) => terminateAfterHandshake(socket, serverUrl));
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const port = (proxy.address() as { port: number }).port;
  proxyUrl = Object.assign(new URL(serverUrl), { host: `127.0.0.1:${port}` }).toString();
});

afterAll(async () => {
  await new Promise((resolve) => proxy.close(resolve));
});

it("a Sequelize connection terminated in its handshake's last packet fails the query", async () => {
  const sequelize = createSequelize(proxyUrl, 1);
  try {
    await expect(sequelize.authenticate()).rejects.toThrow();
    expect(terminated.length).toBeGreaterThanOrEqual(1);
  } finally {
    await sequelize.close();
  }
});

it("creating a database and taking the migration lock fail the same way", async () => {
  const before = terminated.length;
  await expect(ensureDatabase(proxyUrl)).rejects.toThrow();
  const sequelize = createSequelize(testDatabaseUrl(), 1);
  try {
    await expect(runMigrations(proxyUrl, sequelize, [])).rejects.toThrow();
  } finally {
    await sequelize.close();
  }
  expect(terminated.length).toBe(before + 2);
});
