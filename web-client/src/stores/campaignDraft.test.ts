import { describe, expect, it } from "vitest";
import { audienceEstimate, createDraftStore, emptyDraft, toCreateRequest, validateDraft, type CampaignDraft } from "./campaignDraft";

const valid: CampaignDraft = { ...emptyDraft, name: "Night owls cashback", clusterIds: ["3"] };

describe("validateDraft", () => {
  it.each<[string, Partial<CampaignDraft>, keyof CampaignDraft | undefined]>([
    ["a complete draft", {}, undefined],
    ["no name", { name: "  " }, "name"],
    ["no segment", { clusterIds: [] }, "clusterIds"],
    ["holdout over half", { holdoutPercent: "60" }, "holdoutPercent"],
    ["holdout empty", { holdoutPercent: "" }, "holdoutPercent"],
    ["negative value filter", { minMonetary: "-5" }, "minMonetary"],
    ["country of three letters", { countries: "GB, MLT" }, "countries"],
  ])("%s", (_name, patch, problemField) => {
    const problems = validateDraft({ ...valid, ...patch });
    if (problemField) expect(Object.keys(problems)).toEqual([problemField]);
    else expect(problems).toEqual({});
  });
});

describe("toCreateRequest", () => {
  it("converts the form into the request", () => {
    const request = toCreateRequest({ ...valid, countries: "gb, mt", holdoutPercent: "15", maxRecencyDays: "30" }, "web-1");
    expect(request).toMatchObject({
      name: "Night owls cashback",
      clusterIds: [3n],
      holdoutShare: 0.15,
      requestId: "web-1",
      filter: { countries: ["GB", "MT"], maxRecencyDays: 30, minRecencyDays: 0, minMonetary: "" },
    });
  });
});

describe("audienceEstimate", () => {
  const clusters = [
    { clusterId: 3n, size: 200n },
    { clusterId: 4n, size: 100n },
    { clusterId: 5n, size: 50n },
  ];
  it("adds the chosen segments and splits off the holdout", () => {
    expect(audienceEstimate({ ...valid, clusterIds: ["3", "5"], holdoutPercent: "10" }, clusters)).toEqual({
      players: 250,
      holdout: 25,
      treatment: 225,
    });
  });
  it("is empty without segments", () => {
    expect(audienceEstimate({ ...valid, clusterIds: [] }, clusters).players).toBe(0);
  });
});

describe("draft store", () => {
  it("toggles segments and resets", () => {
    const store = createDraftStore();
    store.getState().toggleCluster("3");
    store.getState().toggleCluster("4");
    store.getState().toggleCluster("3");
    expect(store.getState().draft.clusterIds).toEqual(["4"]);
    store.getState().reset();
    expect(store.getState().draft).toEqual(emptyDraft);
  });
});
