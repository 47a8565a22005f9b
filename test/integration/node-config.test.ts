/**
 * Each node runs on its own configuration, which its services find in their settings: two gateways in one process,
 * one allowing a cross-origin client and one not, each answer by their own. The configuration (secrets included) is
 * never published to the registry.
 */
import type { ServiceBroker } from "moleculer";
import type { ConfiguredSettings } from "../../lib/config";
import { dropScopeDatabases, isolation, testConfig } from "../../support/nodes";
import { freePort } from "../../support/servers";
import { startInProcessNode } from "../support/nodes";

const APP_ORIGIN = "https://app.example.com";
const scopes = [isolation(), isolation()];
const nodes: { broker: ServiceBroker; base: string }[] = [];

beforeAll(async () => {
  for (const [index, cors] of [APP_ORIGIN, ""].entries()) {
    const port = await freePort();
    const cfg = testConfig(scopes[index], { SERVICES: "api", PORT: String(port), CORS_ORIGINS: cors });
    nodes.push({ broker: await startInProcessNode(cfg), base: `http://127.0.0.1:${port}` });
  }
});

afterAll(async () => {
  for (const { broker } of nodes) await broker.stop();
  for (const scope of scopes) await dropScopeDatabases(scope.prefix);
});

/** The answer to a browser's preflight of a cross-origin POST from the app's origin. */
const preflight = (base: string) =>
  fetch(`${base}/api/orders`, {
    method: "OPTIONS",
    headers: { Origin: APP_ORIGIN, "Access-Control-Request-Method": "POST" },
  });

it("answers a cross-origin client by the configuration of the node it reached", async () => {
  const [withCors, withoutCors] = nodes;
  const allowed = await preflight(withCors.base);
  expect(allowed.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
  expect(allowed.headers.get("access-control-allow-methods")).toContain("POST");
  expect((await preflight(withoutCors.base)).headers.get("access-control-allow-origin")).toBeNull();
  // Each listens on its own port, the one its configuration names, and sets the security headers.
  for (const { base } of nodes) {
    const live = await fetch(`${base}/health/live`);
    expect(live.status).toBe(200);
    expect(live.headers.get("x-content-type-options")).toBe("nosniff");
    expect(live.headers.get("strict-transport-security")).toBeNull();
  }
});

it("never publishes the configuration with the service's settings", () => {
  const [{ broker }] = nodes;
  // Moleculer's typings lack the option that lists each service's published settings.
  const listServices = broker.registry.getServiceList as (options: { withSettings: boolean }) => unknown;
  const services = listServices.call(broker.registry, { withSettings: true }) as {
    name: string;
    settings: Record<string, unknown>;
  }[];
  const api = services.find((service) => service.name === "api");
  expect(api?.settings).toMatchObject({ port: expect.any(Number) });
  expect(Object.keys(api?.settings ?? {})).not.toContain("config");
  // The service itself has it.
  const settings = broker.getLocalService("api")?.settings as ConfiguredSettings;
  expect(settings.config).toMatchObject({ corsOrigins: [APP_ORIGIN] });
});
