/** The console's pages, and which permissions open each (the API enforces the same). */
export interface NavItem {
  to: string;
  label: string;
  /** Any one of these lets the user open the page. */
  anyOf: string[];
}

export const NAV_ITEMS: NavItem[] = [
  { to: "/dashboard", label: "Dashboard", anyOf: ["dashboard:read"] },
  { to: "/orders", label: "Orders", anyOf: ["orders:read:any", "orders:read:own"] },
  { to: "/operations/dead-letters", label: "Dead letters", anyOf: ["dlq:read"] },
  { to: "/operations/sagas", label: "Sagas", anyOf: ["sagas:read"] },
  { to: "/operations/alerts", label: "Alerts", anyOf: ["alerts:read"] },
  { to: "/operations/audit", label: "Audit trail", anyOf: ["audit:read"] },
  { to: "/operations/logs", label: "Logs", anyOf: ["logs:read"] },
  { to: "/catalog", label: "Catalog", anyOf: ["products:write"] },
  { to: "/users", label: "Users & roles", anyOf: ["users:admin"] },
];

export const visibleItems = (can: (permission: string) => boolean) =>
  NAV_ITEMS.filter((item) => item.anyOf.some((permission) => can(permission)));
