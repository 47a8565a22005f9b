import { authorize, grants, ownerScope, permissionsOfRoles, SYSTEM_CALLER } from "../../lib/permissions";
import type { Caller } from "../../contracts/caller";

const customer: Caller = {
  type: "user",
  id: "u1",
  roles: ["customer"],
  permissions: ["orders:create", "orders:read:own"],
};
const operator: Caller = { type: "user", id: "u2", roles: ["operator"], permissions: ["dlq:*", "products:write"] };
const admin: Caller = { type: "user", id: "u3", roles: ["admin"], permissions: ["*"] };
const machine: Caller = { type: "client", id: "c1", permissions: ["products:write"] };

describe("grants", () => {
  it.each([
    ["*", "users:admin", true],
    ["dlq:*", "dlq:replay", true],
    ["dlq:*", "dlq", true],
    ["dlq:*", "dlqx:replay", false],
    ["orders:read:own", "orders:read:any", false],
    ["products:write", "products:write", true],
  ])("%s grants %s: %s", (held, required, expected) => {
    expect(grants(held, required)).toBe(expected);
  });
});

describe("authorize", () => {
  it("lets anyone call a public action, with or without identity", () => {
    expect(authorize(undefined, "public")).toEqual({ allowed: true });
    expect(authorize({ type: "anonymous" }, "public")).toEqual({ allowed: true });
  });

  it("fails closed: no identity is 401, no declaration is 403 for everyone but the system", () => {
    expect(authorize(undefined, ["products:write"])).toMatchObject({ allowed: false, status: 401 });
    expect(authorize(admin, undefined)).toMatchObject({ allowed: false, status: 403 });
    expect(authorize(SYSTEM_CALLER, undefined)).toEqual({ allowed: true });
  });

  it("asks anonymous callers to authenticate", () => {
    expect(authorize({ type: "anonymous" }, "authenticated")).toMatchObject({ allowed: false, status: 401 });
    expect(authorize({ type: "anonymous" }, ["products:write"])).toMatchObject({ allowed: false, status: 401 });
  });

  it("needs one of the declared permissions", () => {
    expect(authorize(customer, ["users:admin"])).toMatchObject({ allowed: false, status: 403 });
    expect(authorize(customer, ["orders:read:any", "orders:read:own"])).toEqual({ allowed: true });
    expect(authorize(operator, ["dlq:replay"])).toEqual({ allowed: true });
    expect(authorize(admin, ["users:admin"])).toEqual({ allowed: true });
    expect(authorize(machine, ["products:write"])).toEqual({ allowed: true });
    expect(authorize(machine, "authenticated")).toEqual({ allowed: true });
  });
});

it("resolves the permissions of several roles, unknown roles granting nothing", () => {
  const table = { customer: ["orders:create"], operator: ["dlq:*", "orders:create"] };
  expect(permissionsOfRoles(["customer", "operator", "ghost"], table)).toEqual(["dlq:*", "orders:create"]);
});

it("limits callers with only an 'own' permission to their own data", () => {
  expect(ownerScope(customer, "orders:read:any")).toBe("u1");
  expect(ownerScope(admin, "orders:read:any")).toBeUndefined();
  expect(ownerScope(SYSTEM_CALLER, "orders:read:any")).toBeUndefined();
  expect(() => ownerScope(machine, "orders:read:any")).toThrow(expect.objectContaining({ code: 403 }));
});
