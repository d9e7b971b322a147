import { useEffect, useState, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import { clusterClient, trainingClient, useSession, useTraining } from "../api/clients";
import { describeError, type ServerError } from "../api/errors";
import { useQuery } from "../api/useQuery";
import { ChartFigure } from "../charts/ChartFigure";
import { compareModels } from "../charts/shape";
import { Algorithm, TrainingStatus, type Model } from "../gen/crmbet/v1/training_pb";
import { ConfirmButton } from "../components/Confirm";
import { capabilities } from "../stores/session";
import { stageName, statusName } from "../stores/training";
import { Empty, ErrorNotice, PageHeading, QueryView, buttonClass, inputClass } from "../components/States";

/** `Algorithm.KMEANS` -> `kmeans`. */
export function algorithmName(algorithm: Algorithm): string {
  return (Algorithm[algorithm] ?? "unknown").toLowerCase();
}

const ALGORITHMS = [Algorithm.AUTO, Algorithm.KMEANS, Algorithm.DBSCAN, Algorithm.HDBSCAN, Algorithm.ENSEMBLE];

function StartTrainingForm({ onStarted }: { onStarted: (runId: bigint) => void }) {
  const [algorithm, setAlgorithm] = useState(Algorithm.AUTO);
  const [k, setK] = useState("");
  const [seed, setSeed] = useState("42");
  const [activate, setActivate] = useState(false);
  const startError = useTraining((state) => state.startError);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const runId = await useTraining.getState().start({
      algorithm,
      k: k.trim() === "" ? 0 : Number(k),
      seed: BigInt(/^\d+$/.test(seed) ? seed : "0"),
      activate,
    });
    if (runId !== undefined) onStarted(runId);
  };
  return (
    <section aria-labelledby="train-heading" className="rounded-lg border border-slate-200 bg-white p-4">
      <h2 id="train-heading" className="mb-2 text-lg font-semibold">
        Start a training run
      </h2>
      {startError && <ErrorNotice error={startError} title="The run did not start" />}
      <form onSubmit={(event) => void submit(event)} className="flex flex-wrap items-end gap-3">
        <label className="flex flex-col gap-1 text-sm">
          Algorithm
          <select className={inputClass} value={algorithm} onChange={(event) => setAlgorithm(Number(event.target.value))}>
            {ALGORITHMS.map((choice) => (
              <option key={choice} value={choice}>
                {algorithmName(choice)}
              </option>
            ))}
          </select>
        </label>
        <label className="flex flex-col gap-1 text-sm">
          Clusters k (empty: automatic)
          <input className={inputClass} type="number" min={2} max={30} value={k} onChange={(event) => setK(event.target.value)} />
        </label>
        <label className="flex flex-col gap-1 text-sm">
          Seed
          <input className={inputClass} inputMode="numeric" value={seed} onChange={(event) => setSeed(event.target.value)} />
        </label>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={activate} onChange={(event) => setActivate(event.target.checked)} />
          Activate when done
        </label>
        <button type="submit" className={buttonClass}>
          Start training
        </button>
      </form>
    </section>
  );
}

function RunProgressView({ runId, onFinished }: { runId: bigint; onFinished: () => void }) {
  const progress = useTraining((state) => state.runs[runId.toString()]);
  useEffect(() => {
    const known = useTraining.getState().runs[runId.toString()];
    if (!known) void useTraining.getState().watch(runId);
  }, [runId]);
  const finished = progress?.status === TrainingStatus.SUCCEEDED;
  useEffect(() => {
    if (finished) onFinished();
  }, [finished, onFinished]);
  const percent = Math.round(progress?.percent ?? 0);
  return (
    <section aria-labelledby="run-heading" className="rounded-lg border border-slate-200 bg-white p-4">
      <h2 id="run-heading" className="mb-2 text-lg font-semibold">
        Training run #{runId.toString()}
      </h2>
      <div
        role="progressbar"
        aria-label={`Training run ${runId} progress`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        className="h-4 w-full overflow-hidden rounded bg-slate-200"
      >
        <div className="h-full bg-indigo-700" style={{ width: `${percent}%` }} />
      </div>
      <p aria-live="polite" className="mt-2 text-sm" data-testid="run-progress">
        {percent}% — {progress ? `${statusName(progress.status)}, ${stageName(progress.stage)}` : "waiting for the server"}
        {progress?.message ? ` — ${progress.message}` : ""}
      </p>
      {progress?.metrics && (
        <p className="text-sm text-slate-700">Silhouette {progress.metrics.silhouette.toFixed(3)}</p>
      )}
      {progress?.error && <ErrorNotice error={progress.error} title="Lost the progress stream" />}
    </section>
  );
}

function ModelComparison({ left, right }: { left: bigint; right: bigint }) {
  const comparison = useQuery(`compare:${left}:${right}`, async () => {
    const [leftClusters, rightClusters] = await Promise.all([
      clusterClient.listClusters({ modelId: left, pageSize: 100 }),
      clusterClient.listClusters({ modelId: right, pageSize: 100 }),
    ]);
    return compareModels(
      { label: `Model #${left}`, clusters: leftClusters.clusters },
      { label: `Model #${right}`, clusters: rightClusters.clusters },
    );
  });
  return (
    <QueryView query={comparison} what="the comparison">
      {(data) => <ChartFigure title={`Segments of model #${left} and #${right} (share of players, %)`} data={data} horizontal />}
    </QueryView>
  );
}

function ModelTable({ models, canActivate, onActivated }: { models: Model[]; canActivate: boolean; onActivated: () => void }) {
  const [activationError, setActivationError] = useState<ServerError>();
  const activate = async (modelId: bigint) => {
    setActivationError(undefined);
    try {
      await trainingClient.activateModel({ modelId });
      onActivated();
    } catch (error) {
      setActivationError(describeError(error));
    }
  };
  return (
    <>
      {activationError && <ErrorNotice error={activationError} title="Activation failed" />}
      <table className="w-full bg-white text-left text-sm">
        <caption className="sr-only">Models</caption>
        <thead>
          <tr>
            {["Model", "Algorithm", "k", "Silhouette", "Davies–Bouldin", "Calinski–Harabasz", "Stability", "Status"].map((column) => (
              <th key={column} scope="col" className="border-b border-slate-300 px-2 py-1">
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {models.map((model) => (
            <tr key={model.modelId.toString()} data-testid={`model-${model.modelId}`}>
              <td className="border-b border-slate-100 px-2 py-1">
                #{model.modelId.toString()} v{model.version}
              </td>
              <td className="border-b border-slate-100 px-2 py-1">{algorithmName(model.algorithm)}</td>
              <td className="border-b border-slate-100 px-2 py-1">{model.k}</td>
              <td className="border-b border-slate-100 px-2 py-1">{model.metrics?.silhouette.toFixed(3) ?? "–"}</td>
              <td className="border-b border-slate-100 px-2 py-1">{model.metrics?.daviesBouldin.toFixed(3) ?? "–"}</td>
              <td className="border-b border-slate-100 px-2 py-1">{model.metrics?.calinskiHarabasz.toFixed(0) ?? "–"}</td>
              <td className="border-b border-slate-100 px-2 py-1">{model.metrics?.stability.toFixed(3) ?? "–"}</td>
              <td className="border-b border-slate-100 px-2 py-1">
                {model.active ? (
                  <strong>active</strong>
                ) : canActivate ? (
                  <ConfirmButton
                    label={`Activate model #${model.modelId}`}
                    question={`Serve segments from model #${model.modelId}?`}
                    confirmLabel="Confirm activation"
                    onConfirm={() => activate(model.modelId)}
                  />
                ) : (
                  "inactive"
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** Training runs, models and their metrics, comparison and activation. */
export function ModelsPage() {
  const [searchParams, setSearchParams] = useSearchParams();
  const role = useSession((state) => state.role);
  const allowed = capabilities(role);
  const runParameter = searchParams.get("run") ?? "";
  const runId = /^\d+$/.test(runParameter) ? BigInt(runParameter) : undefined;
  const [compareLeft = "", compareRight = ""] = (searchParams.get("compare") ?? "").split(",");
  const models = useQuery("models", () => trainingClient.listModels({ pageSize: 100 }));
  const reloadModels = models.reload;

  const setParameter = (name: string, value: string) => {
    const next = new URLSearchParams(searchParams);
    if (value) next.set(name, value);
    else next.delete(name);
    setSearchParams(next);
  };
  const setCompare = (left: string, right: string) => setParameter("compare", left || right ? `${left},${right}` : "");

  return (
    <>
      <PageHeading title="Models" />
      <div className="flex flex-col gap-6">
        {allowed.train && <StartTrainingForm onStarted={(started) => setParameter("run", started.toString())} />}
        {runId !== undefined && <RunProgressView key={runId.toString()} runId={runId} onFinished={reloadModels} />}
        <QueryView query={models} what="models">
          {({ models: list }) =>
            list.length === 0 ? (
              <Empty>No model yet: start a training run.</Empty>
            ) : (
              <>
                <ModelTable models={list} canActivate={allowed.train} onActivated={reloadModels} />
                <section aria-labelledby="compare-heading" className="rounded-lg border border-slate-200 bg-white p-4">
                  <h2 id="compare-heading" className="mb-2 text-lg font-semibold">
                    Compare two models' segments
                  </h2>
                  <div className="flex flex-wrap gap-3">
                    {[
                      { label: "First model", value: compareLeft, change: (value: string) => setCompare(value, compareRight) },
                      { label: "Second model", value: compareRight, change: (value: string) => setCompare(compareLeft, value) },
                    ].map((picker) => (
                      <label key={picker.label} className="flex flex-col gap-1 text-sm">
                        {picker.label}
                        <select className={inputClass} value={picker.value} onChange={(event) => picker.change(event.target.value)}>
                          <option value="">choose…</option>
                          {list.map((model) => (
                            <option key={model.modelId.toString()} value={model.modelId.toString()}>
                              #{model.modelId.toString()} {algorithmName(model.algorithm)} k={model.k}
                            </option>
                          ))}
                        </select>
                      </label>
                    ))}
                  </div>
                  {/^\d+$/.test(compareLeft) && /^\d+$/.test(compareRight) && (
                    <ModelComparison left={BigInt(compareLeft)} right={BigInt(compareRight)} />
                  )}
                </section>
              </>
            )
          }
        </QueryView>
      </div>
    </>
  );
}
