import { createStore } from "zustand/vanilla";
import { useStore } from "zustand";
import { CampaignType } from "../gen/crmbet/v1/common_pb";
import { Channel } from "../gen/crmbet/v1/campaign_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CreateCampaignRequestSchema } from "../gen/crmbet/v1/campaign_pb";

/** The campaign form as the marketer fills it in. */
export interface CampaignDraft {
  name: string;
  description: string;
  campaignType: CampaignType;
  channel: Channel;
  clusterIds: string[];
  minMonetary: string;
  maxMonetary: string;
  minRecencyDays: string;
  maxRecencyDays: string;
  /** Comma-separated ISO 3166-1 alpha-2 codes. */
  countries: string;
  /** Percent of the audience kept as the control group. */
  holdoutPercent: string;
  messageTemplate: string;
}

export const emptyDraft: CampaignDraft = {
  name: "",
  description: "",
  campaignType: CampaignType.CASHBACK,
  channel: Channel.EMAIL,
  clusterIds: [],
  minMonetary: "",
  maxMonetary: "",
  minRecencyDays: "",
  maxRecencyDays: "",
  countries: "",
  holdoutPercent: "10",
  messageTemplate: "",
};

/** Problems that stop the draft from being sent, by field. */
export function validateDraft(draft: CampaignDraft): Partial<Record<keyof CampaignDraft, string>> {
  const problems: Partial<Record<keyof CampaignDraft, string>> = {};
  if (!draft.name.trim()) problems.name = "give the campaign a name";
  if (draft.clusterIds.length === 0) problems.clusterIds = "choose at least one target segment";
  const holdout = Number(draft.holdoutPercent);
  if (draft.holdoutPercent.trim() === "" || !Number.isFinite(holdout) || holdout < 0 || holdout > 50) {
    problems.holdoutPercent = "holdout must be between 0 and 50 percent";
  }
  for (const field of ["minMonetary", "maxMonetary", "minRecencyDays", "maxRecencyDays"] as const) {
    const text = draft[field].trim();
    if (text !== "" && !(Number(text) >= 0)) problems[field] = "must be a number of at least 0";
  }
  const countries = splitCountries(draft.countries);
  if (countries.some((country) => !/^[A-Z]{2}$/.test(country))) {
    problems.countries = "use two-letter country codes separated by commas, e.g. GB, MT";
  }
  return problems;
}

function splitCountries(text: string): string[] {
  return text
    .split(",")
    .map((country) => country.trim().toUpperCase())
    .filter((country) => country !== "");
}

/** The CreateCampaign request for a valid draft; `requestId` makes a retry idempotent. */
export function toCreateRequest(
  draft: CampaignDraft,
  requestId: string,
): MessageInitShape<typeof CreateCampaignRequestSchema> {
  const optionalInteger = (text: string) => (text.trim() === "" ? 0 : Math.round(Number(text)));
  return {
    name: draft.name.trim(),
    description: draft.description.trim(),
    campaignType: draft.campaignType,
    channel: draft.channel,
    clusterIds: draft.clusterIds.map((id) => BigInt(id)),
    filter: {
      minMonetary: draft.minMonetary.trim(),
      maxMonetary: draft.maxMonetary.trim(),
      minRecencyDays: optionalInteger(draft.minRecencyDays),
      maxRecencyDays: optionalInteger(draft.maxRecencyDays),
      countries: splitCountries(draft.countries),
    },
    holdoutShare: Number(draft.holdoutPercent) / 100,
    messageTemplate: draft.messageTemplate,
    requestId,
  };
}

/**
 * The audience before launch as far as the dashboard can tell: the players of the chosen
 * segments, split into treatment and holdout. Filters and restricted players are applied
 * by the server, so the real count is smaller or equal.
 */
export function audienceEstimate(
  draft: CampaignDraft,
  clusters: { clusterId: bigint; size: bigint }[],
): { players: number; holdout: number; treatment: number } {
  const chosen = new Set(draft.clusterIds);
  const players = clusters
    .filter((cluster) => chosen.has(cluster.clusterId.toString()))
    .reduce((sum, cluster) => sum + Number(cluster.size), 0);
  const holdoutShare = Math.min(0.5, Math.max(0, Number(draft.holdoutPercent) / 100 || 0));
  const holdout = Math.round(players * holdoutShare);
  return { players, holdout, treatment: players - holdout };
}

export interface DraftState {
  draft: CampaignDraft;
  change(patch: Partial<CampaignDraft>): void;
  toggleCluster(clusterId: string): void;
  reset(): void;
}

/** The draft kept while the marketer moves between pages. */
export function createDraftStore() {
  const store = createStore<DraftState>()((set) => ({
    draft: emptyDraft,
    change: (patch) => set((state) => ({ draft: { ...state.draft, ...patch } })),
    toggleCluster: (clusterId) =>
      set((state) => {
        const chosen = state.draft.clusterIds.includes(clusterId)
          ? state.draft.clusterIds.filter((id) => id !== clusterId)
          : [...state.draft.clusterIds, clusterId];
        return { draft: { ...state.draft, clusterIds: chosen } };
      }),
    reset: () => set({ draft: emptyDraft }),
  }));
  return Object.assign(<Selected>(selector: (state: DraftState) => Selected) => useStore(store, selector), store);
}

export const useCampaignDraft = createDraftStore();
