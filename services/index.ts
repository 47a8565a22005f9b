/**
 * The services a process can host, by the names `SERVICES` uses. Loaded lazily, so a process imports (and connects to
 * the databases of) only the services it runs. `health` is not listed: every node runs it.
 */
import type { ServiceSchema } from "moleculer";
import type { ServiceName } from "../lib/config";

type Loader = () => Promise<ServiceSchema>;

/** Each schema is typed with its own settings, methods and state; the broker takes any schema. */
const untyped = (schema: object) => schema as ServiceSchema;

export const SERVICE_LOADERS: Record<ServiceName, Loader> = {
  api: async () => untyped((await import("./api.service")).default),
  auth: async () => untyped((await import("./auth.service")).default),
  products: async () => untyped((await import("./products.service")).default),
  orders: async () => untyped((await import("./orders.service")).default),
  audit: async () => untyped((await import("./audit.service")).default),
  logs: async () => untyped((await import("./logs.service")).default),
  exec: async () => untyped((await import("./exec.service")).default),
  dlq: async () => untyped((await import("./dlq.service")).default),
  payments: async () => untyped((await import("./payments.service")).default),
  shipping: async () => untyped((await import("./shipping.service")).default),
  sagas: async () => untyped((await import("./sagas.service")).default),
  alerts: async () => untyped((await import("./alerts.service")).default),
};

export const loadHealthService: Loader = async () => untyped((await import("./health.service")).default);
