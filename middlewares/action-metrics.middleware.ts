/**
 * Moleculer's own request metrics (`moleculer.request.*`), except for actions that declare `metrics: false`. The
 * gateway's `api.rest` does: every HTTP request would otherwise be counted and timed twice, once as `api.rest` and once
 * as the action it routes to, and the gateway counts and times its HTTP answers itself (mixins/dashboard.mixin.ts).
 * It takes the place of the built-in `Metrics` middleware in the broker's list (moleculer.config.ts), which has no
 * per-action switch.
 */
import { Middlewares, type ActionSchema, type Middleware, type ServiceBroker } from "moleculer";

export function ActionMetricsMiddleware(broker: ServiceBroker): Middleware {
  const builtin = Middlewares.Metrics(broker);
  const localAction = builtin.localAction!;
  return {
    ...builtin,
    name: "Metrics",
    localAction(next, action: ActionSchema) {
      return action.metrics === false ? next : localAction.call(this, next, action);
    },
  };
}
