import { describe, expect, it, vi } from "vitest";
import { create } from "@bufbuild/protobuf";
import {
  TrainingStage,
  TrainingStatus,
  WatchTrainingRunResponseSchema,
} from "../gen/crmbet/v1/training_pb";
import { applyEvent, createTrainingStore, stageName, type RunProgress, type TrainingApi } from "./training";

const event = (percent: number, status = TrainingStatus.RUNNING, stage = TrainingStage.FITTING) =>
  create(WatchTrainingRunResponseSchema, { runId: 7n, percent, status, stage, message: `at ${percent}` });

const start: RunProgress = {
  runId: 7n,
  status: TrainingStatus.QUEUED,
  stage: TrainingStage.UNSPECIFIED,
  percent: 0,
  message: "",
  watching: true,
};

describe("applyEvent", () => {
  it.each([
    { name: "moves forward", before: 10, incoming: 40, expected: 40 },
    { name: "never goes backwards", before: 60, incoming: 40, expected: 60 },
    { name: "caps at 100", before: 90, incoming: 140, expected: 100 },
  ])("$name", ({ before, incoming, expected }) => {
    expect(applyEvent({ ...start, percent: before }, event(incoming)).percent).toBe(expected);
  });

  it("stops watching when the run finishes", () => {
    const done = applyEvent(start, event(100, TrainingStatus.SUCCEEDED, TrainingStage.DONE));
    expect(done).toMatchObject({ watching: false, percent: 100, status: TrainingStatus.SUCCEEDED });
  });
});

describe("training store", () => {
  it("starts a run and follows its stream to 100%", async () => {
    const training = {
      startTraining: vi.fn(async () => ({ runId: 7n })),
      watchTrainingRun: vi.fn(async function* () {
        yield event(20);
        yield event(70, TrainingStatus.RUNNING, TrainingStage.EVALUATING);
        yield event(100, TrainingStatus.SUCCEEDED, TrainingStage.DONE);
      }),
    } as unknown as TrainingApi;
    const store = createTrainingStore(training);
    expect(await store.getState().start({ algorithm: 2, k: 4, seed: 1n, activate: false })).toBe(7n);
    await vi.waitFor(() => expect(store.getState().runs["7"]?.watching).toBe(false));
    expect(store.getState().runs["7"]).toMatchObject({ percent: 100, status: TrainingStatus.SUCCEEDED });
  });

  it("keeps the error when the start is refused", async () => {
    const training = {
      startTraining: vi.fn(async () => {
        throw new Error("permission denied");
      }),
      watchTrainingRun: vi.fn(),
    } as unknown as TrainingApi;
    const store = createTrainingStore(training);
    expect(await store.getState().start({ algorithm: 1, k: 0, seed: 0n, activate: false })).toBeUndefined();
    expect(store.getState().startError?.message).toContain("permission denied");
  });

  it("names stages in plain words", () => {
    expect(stageName(TrainingStage.LOADING_FEATURES)).toBe("loading features");
  });
});
