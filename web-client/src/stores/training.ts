import { createStore } from "zustand/vanilla";
import { useStore } from "zustand";
import type { Client } from "@connectrpc/connect";
import {
  TrainingStage,
  TrainingStatus,
  type ModelMetrics,
  type TrainingService,
  type WatchTrainingRunResponse,
} from "../gen/crmbet/v1/training_pb";
import { describeError, type ServerError } from "../api/errors";

/** The calls the training store needs. */
export type TrainingApi = Pick<Client<typeof TrainingService>, "startTraining" | "watchTrainingRun">;

/** What the dashboard knows of one run while it watches it. */
export interface RunProgress {
  runId: bigint;
  status: TrainingStatus;
  stage: TrainingStage;
  percent: number;
  message: string;
  metrics?: ModelMetrics;
  /** Set when the stream broke or the start failed. */
  error?: ServerError;
  watching: boolean;
}

/** A run's progress after one event of WatchTrainingRun; percent never goes backwards. */
export function applyEvent(previous: RunProgress, event: WatchTrainingRunResponse): RunProgress {
  const finished =
    event.status === TrainingStatus.SUCCEEDED || event.status === TrainingStatus.FAILED;
  return {
    ...previous,
    status: event.status,
    stage: event.stage,
    percent: Math.min(100, Math.max(previous.percent, event.percent)),
    message: event.message,
    metrics: event.metrics ?? previous.metrics,
    watching: previous.watching && !finished,
  };
}

/** `TrainingStage.LOADING_FEATURES` -> `loading features`. */
export function stageName(stage: TrainingStage): string {
  return (TrainingStage[stage] ?? "unknown").toLowerCase().replace(/_/g, " ");
}

/** `TrainingStatus.SUCCEEDED` -> `succeeded`. */
export function statusName(status: TrainingStatus): string {
  return (TrainingStatus[status] ?? "unknown").toLowerCase();
}

export interface StartOptions {
  algorithm: number;
  k: number;
  seed: bigint;
  activate: boolean;
}

export interface TrainingState {
  runs: Record<string, RunProgress>;
  startError?: ServerError;
  /** Starts a run and watches it; resolves to its id, or undefined when the start failed. */
  start(options: StartOptions): Promise<bigint | undefined>;
  /** Follows WatchTrainingRun until the run finishes or the stream breaks. */
  watch(runId: bigint): Promise<void>;
}

function emptyProgress(runId: bigint): RunProgress {
  return {
    runId,
    status: TrainingStatus.QUEUED,
    stage: TrainingStage.UNSPECIFIED,
    percent: 0,
    message: "",
    watching: true,
  };
}

/** The training store over `training`. */
export function createTrainingStore(training: TrainingApi) {
  const store = createStore<TrainingState>()((set, get) => {
    const update = (runId: bigint, change: (progress: RunProgress) => RunProgress) =>
      set((state) => {
        const key = runId.toString();
        return { runs: { ...state.runs, [key]: change(state.runs[key] ?? emptyProgress(runId)) } };
      });

    return {
      runs: {},
      async start(options) {
        set({ startError: undefined });
        try {
          const { runId } = await training.startTraining(options);
          void get().watch(runId);
          return runId;
        } catch (error) {
          set({ startError: describeError(error) });
          return undefined;
        }
      },
      async watch(runId) {
        update(runId, (progress) => ({ ...progress, watching: true, error: undefined }));
        try {
          for await (const event of training.watchTrainingRun({ runId })) {
            update(runId, (progress) => applyEvent(progress, event));
          }
          update(runId, (progress) => ({ ...progress, watching: false }));
        } catch (error) {
          update(runId, (progress) => ({
            ...progress,
            watching: false,
            error: describeError(error),
          }));
        }
      },
    };
  });
  return Object.assign(<Selected>(selector: (state: TrainingState) => Selected) => useStore(store, selector), store);
}
