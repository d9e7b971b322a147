import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { campaignClient, clusterClient, useSession } from "../api/clients";
import { describeError, isUnimplemented, type ServerError } from "../api/errors";
import { newRequestId } from "../api/transport";
import { useQuery } from "../api/useQuery";
import { ChartFigure, DataTable } from "../charts/ChartFigure";
import { conversionUplift, formatMoney, upliftChart } from "../charts/shape";
import { CampaignType } from "../gen/crmbet/v1/common_pb";
import { CampaignStatus, Channel, type Campaign } from "../gen/crmbet/v1/campaign_pb";
import { ConfirmButton } from "../components/Confirm";
import { capabilities } from "../stores/session";
import { audienceEstimate, toCreateRequest, useCampaignDraft, validateDraft, type CampaignDraft } from "../stores/campaignDraft";
import { Empty, ErrorNotice, PageHeading, QueryView, buttonClass, inputClass } from "../components/States";

const enumName = (names: Record<number, string>, value: number) => (names[value] ?? "unknown").toLowerCase().replace(/_/g, " ");
const STATUSES = [CampaignStatus.DRAFT, CampaignStatus.LAUNCHED, CampaignStatus.COMPLETED, CampaignStatus.CANCELLED];
const TYPES = [CampaignType.CASHBACK, CampaignType.RELOAD_BONUS, CampaignType.VIP_HOST, CampaignType.FREE_BETS, CampaignType.REACTIVATION];
const CHANNELS = [Channel.EMAIL, Channel.SMS, Channel.PUSH, Channel.POPUP];

function CampaignError({ error, retry }: { error: ServerError; retry?: () => void }) {
  return (
    <ErrorNotice
      error={error}
      retry={retry}
      title={isUnimplemented(error) ? "Campaigns are not available on this server yet" : undefined}
    />
  );
}

/** Campaigns, filtered by status through `?status=`. */
export function CampaignsPage() {
  const [searchParams, setSearchParams] = useSearchParams();
  const role = useSession((state) => state.role);
  const statusParameter = Number(searchParams.get("status") ?? "0");
  const status = STATUSES.includes(statusParameter) ? statusParameter : CampaignStatus.UNSPECIFIED;
  const campaigns = useQuery(`campaigns:${status}`, () => campaignClient.listCampaigns({ pageSize: 100, status }));
  return (
    <>
      <PageHeading title="Campaigns">
        {capabilities(role).editCampaigns && (
          <Link to="/campaigns/new" className={buttonClass}>
            New campaign
          </Link>
        )}
      </PageHeading>
      <label className="mb-4 flex w-fit flex-col gap-1 text-sm">
        Status
        <select
          className={inputClass}
          value={status}
          onChange={(event) => setSearchParams(event.target.value === "0" ? {} : { status: event.target.value })}
        >
          <option value={CampaignStatus.UNSPECIFIED}>all</option>
          {STATUSES.map((choice) => (
            <option key={choice} value={choice}>
              {enumName(CampaignStatus, choice)}
            </option>
          ))}
        </select>
      </label>
      {campaigns.status === "failed" ? (
        <CampaignError error={campaigns.error} retry={campaigns.reload} />
      ) : (
        <QueryView query={campaigns} what="campaigns">
          {({ campaigns: list }) =>
            list.length === 0 ? (
              <Empty>No campaign yet.</Empty>
            ) : (
              <table className="w-full bg-white text-left text-sm">
                <caption className="sr-only">Campaigns</caption>
                <thead>
                  <tr>
                    {["Campaign", "Status", "Type", "Channel", "Players", "Holdout"].map((column) => (
                      <th key={column} scope="col" className="border-b border-slate-300 px-2 py-1">
                        {column}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {list.map((campaign) => (
                    <tr key={campaign.campaignId.toString()}>
                      <td className="border-b border-slate-100 px-2 py-1">
                        <Link className="text-indigo-800 underline" to={`/campaigns/${campaign.campaignId}`}>
                          {campaign.name}
                        </Link>
                      </td>
                      <td className="border-b border-slate-100 px-2 py-1">{enumName(CampaignStatus, campaign.status)}</td>
                      <td className="border-b border-slate-100 px-2 py-1">{enumName(CampaignType, campaign.campaignType)}</td>
                      <td className="border-b border-slate-100 px-2 py-1">{enumName(Channel, campaign.channel)}</td>
                      <td className="border-b border-slate-100 px-2 py-1">{campaign.treatmentCount.toString()}</td>
                      <td className="border-b border-slate-100 px-2 py-1">{(campaign.holdoutShare * 100).toFixed(0)}%</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </QueryView>
      )}
    </>
  );
}

function TextField({
  label,
  field,
  draft,
  problems,
  ...inputProps
}: {
  label: string;
  field: keyof CampaignDraft;
  draft: CampaignDraft;
  problems: Partial<Record<keyof CampaignDraft, string>>;
  inputMode?: "decimal" | "numeric" | "text";
}) {
  const problemId = `${field}-problem`;
  return (
    <label className="flex flex-col gap-1 text-sm">
      {label}
      <input
        className={inputClass}
        name={field}
        value={String(draft[field])}
        aria-invalid={problems[field] ? true : undefined}
        aria-describedby={problems[field] ? problemId : undefined}
        onChange={(event) => useCampaignDraft.getState().change({ [field]: event.target.value })}
        {...inputProps}
      />
      {problems[field] && (
        <span id={problemId} className="text-red-800">
          {problems[field]}
        </span>
      )}
    </label>
  );
}

/** The campaign form with an audience preview; creates a draft campaign. */
export function NewCampaignPage() {
  const draft = useCampaignDraft((state) => state.draft);
  const [submitted, setSubmitted] = useState(false);
  const [createError, setCreateError] = useState<ServerError>();
  const [requestId] = useState(newRequestId);
  const navigate = useNavigate();
  const clusters = useQuery("campaign-clusters", () => clusterClient.listClusters({ pageSize: 100 }));
  const problems = submitted ? validateDraft(draft) : {};

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    if (Object.keys(validateDraft(draft)).length > 0) return;
    setCreateError(undefined);
    try {
      const created = await campaignClient.createCampaign(toCreateRequest(draft, requestId));
      useCampaignDraft.getState().reset();
      navigate(`/campaigns/${created.campaign?.campaignId ?? ""}`);
    } catch (error) {
      setCreateError(describeError(error));
    }
  };

  return (
    <>
      <PageHeading title="New campaign" />
      <form onSubmit={(event) => void submit(event)} className="flex flex-col gap-4" noValidate>
        <div className="grid grid-cols-1 gap-3 md:grid-cols-2">
          <TextField label="Name" field="name" draft={draft} problems={problems} />
          <TextField label="Description" field="description" draft={draft} problems={problems} />
          <label className="flex flex-col gap-1 text-sm">
            Type
            <select className={inputClass} value={draft.campaignType} onChange={(event) => useCampaignDraft.getState().change({ campaignType: Number(event.target.value) })}>
              {TYPES.map((choice) => (
                <option key={choice} value={choice}>
                  {enumName(CampaignType, choice)}
                </option>
              ))}
            </select>
          </label>
          <label className="flex flex-col gap-1 text-sm">
            Channel
            <select className={inputClass} value={draft.channel} onChange={(event) => useCampaignDraft.getState().change({ channel: Number(event.target.value) })}>
              {CHANNELS.map((choice) => (
                <option key={choice} value={choice}>
                  {enumName(Channel, choice)}
                </option>
              ))}
            </select>
          </label>
        </div>
        <fieldset className="rounded border border-slate-300 p-3" aria-describedby={problems.clusterIds ? "clusterIds-problem" : undefined}>
          <legend className="px-1 font-semibold">Target segments</legend>
          <QueryView query={clusters} what="segments">
            {({ clusters: list }) => (
              <div className="flex flex-wrap gap-4">
                {list.map((cluster) => (
                  <label key={cluster.clusterId.toString()} className="flex items-center gap-2 text-sm">
                    <input
                      type="checkbox"
                      checked={draft.clusterIds.includes(cluster.clusterId.toString())}
                      onChange={() => useCampaignDraft.getState().toggleCluster(cluster.clusterId.toString())}
                    />
                    {cluster.name} ({cluster.size.toString()})
                  </label>
                ))}
              </div>
            )}
          </QueryView>
          {problems.clusterIds && (
            <p id="clusterIds-problem" className="text-sm text-red-800">
              {problems.clusterIds}
            </p>
          )}
        </fieldset>
        <fieldset className="grid grid-cols-1 gap-3 rounded border border-slate-300 p-3 md:grid-cols-3">
          <legend className="px-1 font-semibold">Filters</legend>
          <TextField label="Minimum value" field="minMonetary" draft={draft} problems={problems} inputMode="decimal" />
          <TextField label="Maximum value" field="maxMonetary" draft={draft} problems={problems} inputMode="decimal" />
          <TextField label="Countries (e.g. GB, MT)" field="countries" draft={draft} problems={problems} />
          <TextField label="Active within at least (days)" field="minRecencyDays" draft={draft} problems={problems} inputMode="numeric" />
          <TextField label="Active within at most (days)" field="maxRecencyDays" draft={draft} problems={problems} inputMode="numeric" />
          <TextField label="Holdout (percent kept as control)" field="holdoutPercent" draft={draft} problems={problems} inputMode="decimal" />
        </fieldset>
        <TextField label="Message template" field="messageTemplate" draft={draft} problems={problems} />
        <p className="text-sm text-slate-700">
          Schedule: campaigns launch when you launch them; a schedule field arrives with the campaigns API.
        </p>
        {clusters.status === "loaded" && <AudiencePreview draft={draft} clusters={clusters.data.clusters} />}
        {createError && <CampaignError error={createError} />}
        <div>
          <button type="submit" className={buttonClass}>
            Create draft campaign
          </button>
        </div>
      </form>
    </>
  );
}

function AudiencePreview({ draft, clusters }: { draft: CampaignDraft; clusters: { clusterId: bigint; size: bigint }[] }) {
  const estimate = audienceEstimate(draft, clusters);
  return (
    <section aria-labelledby="preview-heading" className="rounded-lg border border-slate-200 bg-white p-4" data-testid="audience-preview">
      <h2 id="preview-heading" className="font-semibold">
        Audience preview
      </h2>
      <p>
        Up to <strong>{estimate.players.toLocaleString("en-GB")}</strong> players in the chosen segments:{" "}
        {estimate.treatment.toLocaleString("en-GB")} to contact, {estimate.holdout.toLocaleString("en-GB")} held out as control.
      </p>
      <p className="text-sm text-slate-700">
        Filters and restricted players (self-excluded, cooling off) are excluded by the server when the campaign is created; the
        campaign page shows the exact counts before launch.
      </p>
    </section>
  );
}

async function loadCampaign(campaignId: bigint) {
  const { campaign } = await campaignClient.getCampaign({ campaignId });
  let results;
  if (campaign && campaign.status !== CampaignStatus.DRAFT) {
    results = await campaignClient.getCampaignResults({ campaignId });
  }
  return { campaign, results };
}

function CampaignSummary({ campaign }: { campaign: Campaign }) {
  return (
    <DataTable
      caption="Campaign"
      columns={["Field", "Value"]}
      rows={[
        ["Status", enumName(CampaignStatus, campaign.status)],
        ["Type", enumName(CampaignType, campaign.campaignType)],
        ["Channel", enumName(Channel, campaign.channel)],
        ["Target segments", campaign.clusterIds.map(String).join(", ")],
        ["Players to contact", campaign.treatmentCount.toString()],
        ["Held out (control)", `${campaign.controlCount} (${(campaign.holdoutShare * 100).toFixed(0)}%)`],
        ["Created by", campaign.createdBy],
      ]}
    />
  );
}

/** One campaign: its audience, launch behind a confirmation, results with uplift. */
export function CampaignPage() {
  const { campaignId = "" } = useParams();
  const id = /^\d+$/.test(campaignId) ? BigInt(campaignId) : 0n;
  const role = useSession((state) => state.role);
  const [launchError, setLaunchError] = useState<ServerError>();
  const campaign = useQuery(`campaign:${id}`, () => loadCampaign(id));
  const launch = async () => {
    setLaunchError(undefined);
    try {
      await campaignClient.launchCampaign({ campaignId: id });
      campaign.reload();
    } catch (error) {
      setLaunchError(describeError(error));
    }
  };
  if (campaign.status === "failed") {
    return (
      <>
        <PageHeading title={`Campaign ${campaignId}`} />
        <CampaignError error={campaign.error} retry={campaign.reload} />
      </>
    );
  }
  return (
    <QueryView query={campaign} what="the campaign">
      {({ campaign: shown, results }) => {
        if (!shown) return <Empty>No such campaign.</Empty>;
        const uplift = results?.treatment && results.control ? conversionUplift(results.treatment, results.control) : undefined;
        return (
          <div className="flex flex-col gap-6">
            <PageHeading title={shown.name}>
              {shown.status === CampaignStatus.DRAFT && capabilities(role).launchCampaigns && (
                <ConfirmButton
                  label="Launch campaign"
                  question={`Send to ${shown.treatmentCount} players (${shown.controlCount} held out)?`}
                  confirmLabel="Confirm launch"
                  onConfirm={launch}
                />
              )}
            </PageHeading>
            <p>{shown.description}</p>
            {launchError && <CampaignError error={launchError} />}
            <CampaignSummary campaign={shown} />
            {results && (
              <section aria-labelledby="results-heading" className="flex flex-col gap-4">
                <h2 id="results-heading" className="text-lg font-semibold">
                  Results
                </h2>
                <DataTable
                  caption="Funnel"
                  columns={["Group", "Players", "Sent", "Delivered", "Opened", "Clicked", "Converted", "Deposits"]}
                  rows={[
                    ["Treatment", results.treatment],
                    ["Control", results.control],
                  ].map(([label, funnel]) => {
                    const group = funnel as typeof results.treatment;
                    return [
                      label as string,
                      String(group?.players ?? 0),
                      String(group?.sent ?? 0),
                      String(group?.delivered ?? 0),
                      String(group?.opened ?? 0),
                      String(group?.clicked ?? 0),
                      String(group?.converted ?? 0),
                      formatMoney(group?.deposits),
                    ];
                  })}
                />
                {uplift ? (
                  <ChartFigure title="Conversion uplift with its 95% interval (percentage points)" data={upliftChart(uplift)} horizontal />
                ) : (
                  <Empty>No conversions measured yet.</Empty>
                )}
              </section>
            )}
          </div>
        );
      }}
    </QueryView>
  );
}
