import { createClient } from "@connectrpc/connect";
import { AuthService } from "../gen/crmbet/v1/auth_pb";
import { CampaignService } from "../gen/crmbet/v1/campaign_pb";
import { ClusterService } from "../gen/crmbet/v1/cluster_pb";
import { TrainingService } from "../gen/crmbet/v1/training_pb";
import { UserService } from "../gen/crmbet/v1/user_pb";
import { createTransport } from "./transport";
import { describeError } from "./errors";
import { createSessionStore } from "../stores/session";
import { createTrainingStore } from "../stores/training";

// The page's own origin: the server serves the dashboard, and the dev server proxies.
let currentAccessToken: string | undefined;
const transport = createTransport(
  window.location.origin,
  () => currentAccessToken,
  (error) => useSession.getState().expire(describeError(error)),
);

export const authClient = createClient(AuthService, transport);
export const clusterClient = createClient(ClusterService, transport);
export const userClient = createClient(UserService, transport);
export const trainingClient = createClient(TrainingService, transport);
export const campaignClient = createClient(CampaignService, transport);

/** The one login session of this tab; its tokens live in memory only. */
export const useSession = createSessionStore(authClient);
useSession.subscribe((state) => {
  currentAccessToken = state.accessToken;
});

/** Training runs this tab watches. */
export const useTraining = createTrainingStore(trainingClient);
