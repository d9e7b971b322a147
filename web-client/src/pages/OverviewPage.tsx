import { Link } from "react-router";
import { campaignClient, clusterClient, trainingClient, useSession } from "../api/clients";
import { describeError, isUnimplemented, type ServerError } from "../api/errors";
import { useQuery } from "../api/useQuery";
import { ChartFigure } from "../charts/ChartFigure";
import { clusterSizes } from "../charts/shape";
import { CampaignStatus, type Campaign } from "../gen/crmbet/v1/campaign_pb";
import { Empty, ErrorNotice, PageHeading, QueryView, Stat } from "../components/States";
import { algorithmName } from "./ModelsPage";
import { capabilities } from "../stores/session";

/** The overview; models only for roles that may read them (the permission table's rule). */
async function loadOverview(readModels: boolean) {
  const [clusters, models] = await Promise.all([
    clusterClient.listClusters({ pageSize: 100 }),
    readModels ? trainingClient.listModels({ pageSize: 100 }) : Promise.resolve({ models: [] }),
  ]);
  let campaigns: Campaign[] = [];
  let campaignError: ServerError | undefined;
  try {
    campaigns = (await campaignClient.listCampaigns({ pageSize: 50, status: CampaignStatus.LAUNCHED })).campaigns;
  } catch (error) {
    campaignError = describeError(error);
  }
  return { clusters: clusters.clusters, activeModelId: clusters.modelId, models: models.models, campaigns, campaignError };
}

export function OverviewPage() {
  const role = useSession((state) => state.role);
  const readModels = capabilities(role).train;
  const overview = useQuery(`overview:${readModels}`, () => loadOverview(readModels));
  return (
    <>
      <PageHeading title="Overview" />
      <QueryView query={overview} what="the overview">
        {({ clusters, activeModelId, models, campaigns, campaignError }) => {
          const activeModel = models.find((model) => model.active);
          const players = clusters.reduce((sum, cluster) => sum + Number(cluster.size), 0);
          return (
            <div className="flex flex-col gap-6">
              <dl className="grid grid-cols-1 gap-4 sm:grid-cols-2 lg:grid-cols-4">
                <Stat label="Players in segments" value={players.toLocaleString("en-GB")} />
                <Stat label="Segments" value={clusters.length} />
                <Stat
                  label="Active model"
                  value={activeModel ? `#${activeModel.modelId} v${activeModel.version}` : activeModelId ? `#${activeModelId}` : "none"}
                  detail={activeModel && `${algorithmName(activeModel.algorithm)}, k = ${activeModel.k}`}
                />
                <Stat
                  label="Silhouette of the active model"
                  value={activeModel?.metrics ? activeModel.metrics.silhouette.toFixed(3) : "–"}
                  detail={readModels ? "from −1 to 1; higher separates segments better" : "model metrics are for analysts"}
                />
              </dl>
              {clusters.length === 0 ? (
                <Empty>No segments yet: load a lake and train a model (Models page).</Empty>
              ) : (
                <ChartFigure title="Players per segment" data={clusterSizes(clusters)} horizontal />
              )}
              <section aria-labelledby="quality-heading" className="rounded-lg border border-slate-200 bg-white p-4">
                <h2 id="quality-heading" className="font-semibold">
                  Data quality of the last ETL run
                </h2>
                <p className="text-slate-700">
                  Not available: the API has no RPC for ETL runs yet (the quality scores are in the{" "}
                  <code>etl_runs</code> table and in <code>crmbet etl --json</code>).
                </p>
              </section>
              <section aria-labelledby="campaigns-heading" className="rounded-lg border border-slate-200 bg-white p-4">
                <h2 id="campaigns-heading" className="font-semibold">
                  Running campaigns
                </h2>
                {campaignError ? (
                  <ErrorNotice
                    error={campaignError}
                    title={isUnimplemented(campaignError) ? "Campaigns are not available on this server yet" : undefined}
                  />
                ) : campaigns.length === 0 ? (
                  <Empty>No campaign is running.</Empty>
                ) : (
                  <ul className="list-disc pl-5">
                    {campaigns.map((campaign) => (
                      <li key={campaign.campaignId.toString()}>
                        <Link className="text-indigo-800 underline" to={`/campaigns/${campaign.campaignId}`}>
                          {campaign.name}
                        </Link>{" "}
                        — {campaign.treatmentCount.toString()} players, {campaign.controlCount.toString()} held out
                      </li>
                    ))}
                  </ul>
                )}
              </section>
            </div>
          );
        }}
      </QueryView>
    </>
  );
}
