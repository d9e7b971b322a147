import { useEffect } from "react";
import { NavLink, Navigate, Outlet, useLocation, useNavigate } from "react-router";
import { useSession } from "../api/clients";
import { capabilities, roleName } from "../stores/session";
import { secondaryButtonClass } from "./States";

const PAGES = [
  { to: "/", label: "Overview" },
  { to: "/segments", label: "Segments" },
  { to: "/players", label: "Players" },
  { to: "/campaigns", label: "Campaigns" },
  { to: "/models", label: "Models", needsTraining: true },
];

/** The frame of every signed-in page: skip link, navigation, who is signed in, logout. */
export function Layout() {
  const status = useSession((state) => state.status);
  const username = useSession((state) => state.username);
  const role = useSession((state) => state.role);
  const location = useLocation();
  const navigate = useNavigate();
  useEffect(() => {
    const refreshIfDue = () => {
      if (document.visibilityState === "visible") void useSession.getState().refreshIfDue();
    };
    document.addEventListener("visibilitychange", refreshIfDue);
    return () => document.removeEventListener("visibilitychange", refreshIfDue);
  }, []);
  if (status !== "signed-in") {
    const next = `${location.pathname}${location.search}`;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  const logout = async () => {
    try {
      await useSession.getState().logout();
    } finally {
      navigate("/login?ended=1", { replace: true });
    }
  };
  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:p-2">
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center gap-4 px-4 py-2">
          <span className="font-bold text-indigo-800">crmbet</span>
          <nav aria-label="Main">
            <ul className="flex flex-wrap gap-1">
              {PAGES.filter((page) => !page.needsTraining || capabilities(role).train).map((page) => (
                <li key={page.to}>
                  <NavLink
                    to={page.to}
                    end={page.to === "/"}
                    className={({ isActive }) =>
                      `rounded px-3 py-1.5 ${isActive ? "bg-indigo-100 font-semibold text-indigo-900" : "text-slate-800 hover:bg-slate-100"}`
                    }
                  >
                    {page.label}
                  </NavLink>
                </li>
              ))}
            </ul>
          </nav>
          <div className="ml-auto flex items-center gap-3 text-sm">
            <span data-testid="signed-in-as">
              {username} ({roleName(role)})
            </span>
            <button type="button" onClick={() => void logout()} className={secondaryButtonClass}>
              Log out
            </button>
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-6xl px-4 py-6">
        <Outlet />
      </main>
    </div>
  );
}
