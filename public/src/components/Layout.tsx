/** The frame of every signed-in page: navigation with only what the user may open, who is signed in, sign-out. */
import { NavLink, Outlet, useNavigate } from "react-router";
import { sessionStore, useSession } from "../stores/session";
import { timeZoneStore, useTimeZone } from "../stores/timeZone";
import { visibleItems } from "./nav";
import { Shortcuts } from "./Shortcuts";

export function Layout() {
  const user = useSession((state) => state.user);
  const can = useSession((state) => state.can);
  const navigate = useNavigate();
  const items = visibleItems(can);
  const zone = useTimeZone();
  return (
    <div className="min-h-screen bg-slate-50 text-slate-900">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:bg-white focus:p-2"
      >
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white">
        <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-x-6 gap-y-2 px-4 py-3">
          <span className="font-semibold text-blue-800">AiCUnet</span>
          <nav aria-label="Main" className="flex flex-wrap gap-1">
            {items.map((item) => (
              <NavLink
                key={item.to}
                to={item.to}
                className={({ isActive }) =>
                  `rounded px-2 py-1 text-sm ${isActive ? "bg-blue-100 font-medium text-blue-900" : "text-slate-700 hover:bg-slate-100"}`
                }
              >
                {item.label}
              </NavLink>
            ))}
          </nav>
          <div className="ml-auto flex items-center gap-3 text-sm">
            <span className="text-slate-700">
              {user?.displayName} <span className="text-slate-500">({user?.roles.join(", ")})</span>
            </span>
            <button
              type="button"
              className="rounded border border-slate-400 px-2 py-1 hover:bg-slate-100"
              title="Show times in UTC or in your time zone"
              onClick={() => timeZoneStore.getState().toggle()}
            >
              Times: {zone === "UTC" ? "UTC" : "local"}
            </button>
            <button
              type="button"
              className="rounded border border-slate-400 px-2 py-1 hover:bg-slate-100"
              onClick={() => {
                void sessionStore.getState().signOut();
                navigate("/login");
              }}
            >
              Sign out
            </button>
          </div>
        </div>
      </header>
      <Shortcuts />
      <main id="main" className="mx-auto max-w-7xl px-4 py-6">
        {/* Keyed by the zone, so every time on the page is shown again in the one chosen. */}
        <Outlet key={zone} />
      </main>
    </div>
  );
}
