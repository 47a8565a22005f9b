/**
 * Shutdown in the right order: when the broker starts stopping, every local service that takes work from outside
 * (the gateway's HTTP server) stops taking it *before* the broker waits for in-flight requests to finish. Without this
 * the gateway would keep accepting requests while the node drains.
 */
import type { Middleware, Service, ServiceBroker } from "moleculer";

interface IntakeService {
  stopIntake?: () => void;
}

export function StopIntakeMiddleware(): Middleware {
  return {
    name: "StopIntake",
    async stopping(broker: ServiceBroker) {
      for (const service of broker.services as (Service & IntakeService)[]) service.stopIntake?.();
    },
  };
}
