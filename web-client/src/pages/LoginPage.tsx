import { useState, type FormEvent } from "react";
import { Navigate, useSearchParams } from "react-router";
import { useSession } from "../api/clients";
import { ErrorNotice, buttonClass, inputClass } from "../components/States";

/** Where to go after login: a path of this dashboard only, never another site. */
function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function LoginPage() {
  const [searchParams] = useSearchParams();
  const status = useSession((state) => state.status);
  const error = useSession((state) => state.error);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  if (status === "signed-in") return <Navigate to={safeNext(searchParams.get("next"))} replace />;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    await useSession.getState().login(username, password);
  };
  return (
    <main id="main" className="mx-auto mt-24 max-w-sm rounded-lg border border-slate-200 bg-white p-6">
      <h1 className="mb-4 text-2xl font-bold">Sign in to crmbet</h1>
      {searchParams.get("ended") && !error && (
        <p role="status" className="mb-3 text-slate-800">
          You are logged out; the session has ended.
        </p>
      )}
      {error && <ErrorNotice error={error} title="Sign-in failed" />}
      <form onSubmit={(event) => void submit(event)} className="flex flex-col gap-3">
        <label className="flex flex-col gap-1">
          Username
          <input
            className={inputClass}
            name="username"
            autoComplete="username"
            required
            value={username}
            onChange={(event) => setUsername(event.target.value)}
          />
        </label>
        <label className="flex flex-col gap-1">
          Password
          <input
            className={inputClass}
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(event) => setPassword(event.target.value)}
          />
        </label>
        <button type="submit" className={buttonClass} disabled={status === "signing-in"}>
          {status === "signing-in" ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
