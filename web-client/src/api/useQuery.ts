import { useCallback, useEffect, useState } from "react";
import { describeError, type ServerError } from "./errors";

/** The state of one load: loading, loaded, or failed with the server's error. */
export type QueryState<Data> =
  | { status: "loading" }
  | { status: "loaded"; data: Data }
  | { status: "failed"; error: ServerError };

/**
 * Runs `load` when `key` changes and keeps its state; `reload` runs it again.
 * `key` names everything `load` depends on (for example the URL's search string).
 */
export function useQuery<Data>(
  key: string,
  load: (signal: AbortSignal) => Promise<Data>,
): QueryState<Data> & { reload: () => void } {
  const [state, setState] = useState<QueryState<Data>>({ status: "loading" });
  const [generation, setGeneration] = useState(0);
  // `load` is a new closure every render; `key` says when it means something new.
  const run = useCallback(load, [key]);
  useEffect(() => {
    const controller = new AbortController();
    setState({ status: "loading" });
    run(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setState({ status: "loaded", data });
      },
      (error: unknown) => {
        if (!controller.signal.aborted) setState({ status: "failed", error: describeError(error) });
      },
    );
    return () => controller.abort();
  }, [run, generation]);
  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { ...state, reload };
}
