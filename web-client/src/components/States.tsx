import type { ReactNode } from "react";
import type { ServerError } from "../api/errors";
import type { QueryState } from "../api/useQuery";

/** A polite "loading" line for screen readers and eyes. */
export function Loading({ what }: { what: string }) {
  return (
    <p role="status" className="py-4 text-slate-700">
      Loading {what}…
    </p>
  );
}

/** The server's error with its code, message and request id, and a retry when given. */
export function ErrorNotice({ error, retry, title }: { error: ServerError; retry?: () => void; title?: string }) {
  return (
    <div role="alert" className="my-3 rounded-md border border-red-300 bg-red-50 p-3 text-red-900">
      <p className="font-semibold">
        {title ?? "The server refused the request"}: <code>{error.code}</code>
      </p>
      <p>{error.message}</p>
      {error.requestId && (
        <p className="text-sm">
          Request id: <code data-testid="request-id">{error.requestId}</code>
        </p>
      )}
      {retry && (
        <button type="button" onClick={retry} className="mt-2 rounded bg-red-800 px-3 py-1 text-white">
          Try again
        </button>
      )}
    </div>
  );
}

/** A friendly line where a list has nothing to show. */
export function Empty({ children }: { children: ReactNode }) {
  return <p className="py-4 text-slate-700">{children}</p>;
}

/** Renders the loading or error state of `query`, or `children` with its data. */
export function QueryView<Data>({
  query,
  what,
  children,
}: {
  query: QueryState<Data> & { reload: () => void };
  what: string;
  children: (data: Data) => ReactNode;
}) {
  if (query.status === "loading") return <Loading what={what} />;
  if (query.status === "failed") return <ErrorNotice error={query.error} retry={query.reload} />;
  return <>{children(query.data)}</>;
}

/** A page heading with optional actions on the right. */
export function PageHeading({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-center justify-between gap-2">
      <h1 className="text-2xl font-bold">{title}</h1>
      {children}
    </div>
  );
}

/** A labelled number. */
export function Stat({ label, value, detail }: { label: string; value: ReactNode; detail?: ReactNode }) {
  return (
    <div className="rounded-lg border border-slate-200 bg-white p-4">
      <dt className="text-sm text-slate-700">{label}</dt>
      <dd className="text-2xl font-semibold">{value}</dd>
      {detail && <dd className="text-sm text-slate-700">{detail}</dd>}
    </div>
  );
}

export const buttonClass =
  "rounded bg-indigo-700 px-3 py-1.5 font-medium text-white hover:bg-indigo-800 disabled:bg-slate-400 disabled:text-slate-900";
export const secondaryButtonClass =
  "rounded border border-slate-400 bg-white px-3 py-1.5 font-medium text-slate-900 hover:bg-slate-100";
export const inputClass = "rounded border border-slate-400 px-2 py-1";
