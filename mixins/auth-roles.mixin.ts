/**
 * The auth service's roles: each names the permissions it grants (lib/permissions.ts). A change is broadcast
 * (`auth.roles.changed`) so gateways reload the role table at once.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { ROLE_NAME } from "../lib/account-input";
import { pageOf, pageParams, type Page } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import type { Role } from "../contracts/auth";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

type RolesThis = Service<DbSettings> & DbMethods;

const listRolesParams = paramsSchema({ ...pageParams(100), $$strict: true });
const putRoleParams = paramsSchema({
  name: ROLE_NAME,
  description: { type: "string", max: 500, default: "" },
  permissions: { type: "array", items: { type: "string", pattern: /^(\*|[a-z]+(:[a-z*]+)*)$/ }, unique: true },
  $$strict: true,
});

export function authRolesMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DbMethods, DbServiceThis>> = {
    actions: {
      /** Role → permissions, for resolving a caller's permissions. Internal (system only). */
      rolePermissions: {
        async handler(this: RolesThis): Promise<Record<string, string[]>> {
          const rows = await this.rows<Role>("SELECT name, permissions FROM roles");
          return Object.fromEntries(rows.map((row) => [row.name, row.permissions]));
        },
      },

      /** Roles and their permissions (a few: all of them unless paged). `users:admin`. */
      "roles.list": {
        rest: "GET /roles",
        list: "page",
        permissions: ["users:admin"],
        params: listRolesParams,
        async handler(this: RolesThis, ctx: Context<ParamsOf<typeof listRolesParams>>): Promise<Page<Role>> {
          const roles = await this.rows<Role>(
            `SELECT name, description, permissions, built_in AS "builtIn" FROM roles ORDER BY name`,
          );
          return pageOf(roles, ctx.params);
        },
      },

      /** Creates or replaces a role's permissions; gateways pick the change up at once. `users:admin`. */
      "roles.put": {
        audit: { entity: "role", idParam: "name" },
        rest: "PUT /roles/:name",
        permissions: ["users:admin"],
        params: putRoleParams,
        async handler(this: RolesThis, ctx: Context<ParamsOf<typeof putRoleParams>>): Promise<Role> {
          const { name, description, permissions } = ctx.params;
          const [role] = await this.rows<Role>(
            `INSERT INTO roles (name, description, permissions) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET description = $2, permissions = $3, updated_at = now()
             RETURNING name, description, permissions, built_in AS "builtIn"`,
            [name, description, permissions],
          );
          ctx.broadcast("auth.roles.changed", { name });
          return role;
        },
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
