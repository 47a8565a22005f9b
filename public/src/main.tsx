import { StrictMode, Suspense, lazy, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import { createBrowserRouter, Navigate, RouterProvider, useLocation } from "react-router";
import { Layout } from "./components/Layout";
import { visibleItems } from "./components/nav";
import { Empty, Loading } from "./components/States";
import { LoginPage } from "./pages/Login";
import { sessionStore, useSession } from "./stores/session";

// Each page is its own chunk: the sign-in page loads only what it needs.
const page = <K extends string>(load: () => Promise<Record<K, () => ReactNode>>, name: K) =>
  lazy(async () => ({ default: (await load())[name] }));
const AuditPage = page(() => import("./pages/Audit"), "AuditPage");
const CatalogPage = page(() => import("./pages/Catalog"), "CatalogPage");
const DashboardPage = page(() => import("./pages/Dashboard"), "DashboardPage");
const DeadLettersPage = page(() => import("./pages/DeadLetters"), "DeadLettersPage");
const LogsPage = page(() => import("./pages/Logs"), "LogsPage");
const OrderDetailPage = page(() => import("./pages/OrderDetail"), "OrderDetailPage");
const OrdersPage = page(() => import("./pages/Orders"), "OrdersPage");
const UsersPage = page(() => import("./pages/Users"), "UsersPage");
import "./styles.css";

/** Signed-in pages only; anyone else goes to sign-in, and comes back here after. */
function RequireSession({ children }: { children: ReactNode }) {
  const user = useSession((state) => state.user);
  const restoring = useSession((state) => state.restoring);
  const location = useLocation();
  if (restoring) return <Loading what="your session" />;
  if (!user) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return <>{children}</>;
}

/** A page the user may not open is not in the navigation; typed in directly, it says so (the API refuses anyway). */
function Allowed({ anyOf, children }: { anyOf: string[]; children: ReactNode }) {
  const can = useSession((state) => state.can);
  if (!anyOf.some((permission) => can(permission))) return <Empty>You do not have access to this page.</Empty>;
  return <Suspense fallback={<Loading what="the page" />}>{children}</Suspense>;
}

function Home() {
  const can = useSession((state) => state.can);
  const first = visibleItems(can)[0];
  return first ? <Navigate to={first.to} replace /> : <Empty>Your account has no pages to show.</Empty>;
}

const router = createBrowserRouter([
  { path: "/login", element: <LoginPage /> },
  {
    element: (
      <RequireSession>
        <Layout />
      </RequireSession>
    ),
    children: [
      { index: true, element: <Home /> },
      {
        path: "dashboard",
        element: (
          <Allowed anyOf={["dashboard:read"]}>
            <DashboardPage />
          </Allowed>
        ),
      },
      {
        path: "orders",
        element: (
          <Allowed anyOf={["orders:read:any", "orders:read:own"]}>
            <OrdersPage />
          </Allowed>
        ),
      },
      {
        path: "orders/:id",
        element: (
          <Allowed anyOf={["orders:read:any", "orders:read:own"]}>
            <OrderDetailPage />
          </Allowed>
        ),
      },
      {
        path: "operations/dead-letters",
        element: (
          <Allowed anyOf={["dlq:read"]}>
            <DeadLettersPage />
          </Allowed>
        ),
      },
      {
        path: "operations/audit",
        element: (
          <Allowed anyOf={["audit:read"]}>
            <AuditPage />
          </Allowed>
        ),
      },
      {
        path: "operations/logs",
        element: (
          <Allowed anyOf={["logs:read"]}>
            <LogsPage />
          </Allowed>
        ),
      },
      {
        path: "catalog",
        element: (
          <Allowed anyOf={["products:write"]}>
            <CatalogPage />
          </Allowed>
        ),
      },
      {
        path: "users",
        element: (
          <Allowed anyOf={["users:admin"]}>
            <UsersPage />
          </Allowed>
        ),
      },
      { path: "*", element: <Empty>There is no page at this address.</Empty> },
    ],
  },
]);

// A reloaded tab picks its session up again before the first page decides where to go.
void sessionStore.getState().restore();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <RouterProvider router={router} />
  </StrictMode>,
);
