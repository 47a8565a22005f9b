/**
 * The gateway's `openapi` action (`GET /api/openapi.json`): the OpenAPI 3.1 document of every route the gateway
 * serves now, built from moleculer-web's route table and the routed actions' schemas (lib/openapi.ts).
 */
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";
import packageJson from "../package.json";
import { buildOpenApi, type RouteInfo } from "../lib/openapi";
import type { ListShape } from "../lib/paging";
import type { PermissionDeclaration } from "../lib/permissions";

const HTTP_METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);

/** What the document says of an action, as the registry lists it. */
interface RouteAction {
  params?: Record<string, unknown>;
  permissions?: PermissionDeclaration;
  status?: number;
  list?: ListShape;
}

/** moleculer-web's route table. */
interface RouteTable {
  aliases: {
    action?: unknown;
    method: string;
    fullPath: string;
    route?: { opts?: { bodyParsers?: { urlencoded?: unknown } } };
  }[];
}

export function gatewayOpenApiMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<ServiceSettingSchema, object, RouteTable>> = {
    actions: {
      /** The OpenAPI 3.1 document of every route the gateway serves now, generated from the actions. Public. */
      openapi: {
        permissions: "public",
        handler(): Record<string, unknown> {
          const actions = new Map(
            (this.broker.registry.getActionList({}) as unknown as { name: string; action?: RouteAction }[]).map(
              (item) => [item.name, item.action],
            ),
          );
          const routes: RouteInfo[] = this.aliases
            .filter((alias) => typeof alias.action === "string" && HTTP_METHODS.has(alias.method))
            .map((alias) => {
              const action = actions.get(alias.action as string);
              return {
                method: alias.method,
                path: alias.fullPath,
                action: alias.action as string,
                params: action?.params,
                permissions: action?.permissions,
                status: action?.status,
                list: action?.list,
                // The token endpoint's route parses form bodies (RFC 6749), the others JSON.
                bodyType: alias.route?.opts?.bodyParsers?.urlencoded ? "form" : "json",
              };
            });
          return buildOpenApi(routes, { title: "AiCUnet API", version: packageJson.version });
        },
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
