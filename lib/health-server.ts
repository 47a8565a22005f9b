/**
 * `/health/live` and `/health/ready` on `PORT` for a node that hosts no gateway (the gateway serves them itself), so
 * every role has the same HTTP probes (Kubernetes' liveness, readiness and startup probes use them). It answers from
 * this node's `health` service: 200 with the report, or 503 `NOT_READY` naming the failing checks.
 */
import { createServer, type Server } from "node:http";
import type { Errors, ServiceBroker } from "moleculer";

const ROUTES: Record<string, string> = { "/health/live": "health.live", "/health/ready": "health.ready" };

export async function startHealthServer(broker: ServiceBroker, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const action = req.method === "GET" || req.method === "HEAD" ? ROUTES[req.url?.split("?")[0] ?? ""] : undefined;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : JSON.stringify(body));
    };
    if (!action) {
      send(404, { name: "NotFoundError", message: "Not found", code: 404, type: "NOT_FOUND", data: null });
      return;
    }
    broker.call(action, {}, { nodeID: broker.nodeID }).then(
      (report) => send(200, report),
      (err: Errors.MoleculerError) => {
        const code = err.code === 503 ? 503 : 500;
        send(code, { name: err.name, message: err.message, code, type: err.type ?? "INTERNAL_ERROR", data: err.data });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "0.0.0.0", () => resolve());
  });
  return server;
}
