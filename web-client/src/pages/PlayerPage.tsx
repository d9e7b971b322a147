import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { userClient } from "../api/clients";
import { useQuery } from "../api/useQuery";
import { ChartFigure, DataTable } from "../charts/ChartFigure";
import { activityByHour, activityByWeekday, formatMoney } from "../charts/shape";
import { GameType } from "../gen/crmbet/v1/common_pb";
import { Empty, PageHeading, QueryView, Stat, buttonClass, inputClass } from "../components/States";

const gameName = (game: GameType) => (GameType[game] ?? "unknown").toLowerCase().replace(/_/g, " ");
const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

/** Player search by id prefix and country; the filters live in the URL. */
export function PlayersPage() {
  const [searchParams, setSearchParams] = useSearchParams();
  const prefix = searchParams.get("q") ?? "";
  const country = searchParams.get("country") ?? "";
  const [prefixText, setPrefixText] = useState(prefix);
  const [countryText, setCountryText] = useState(country);
  const navigate = useNavigate();
  const found = useQuery(`players:${prefix}:${country}`, () =>
    userClient.searchUsers({ userIdPrefix: prefix, country, pageSize: 25 }),
  );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (prefixText.trim()) next.set("q", prefixText.trim());
    if (countryText.trim()) next.set("country", countryText.trim().toUpperCase());
    setSearchParams(next);
  };
  return (
    <>
      <PageHeading title="Players" />
      <form role="search" onSubmit={submit} className="mb-4 flex flex-wrap items-end gap-2">
        <label className="flex flex-col gap-1 text-sm">
          Player id starts with
          <input className={inputClass} name="q" value={prefixText} onChange={(event) => setPrefixText(event.target.value)} />
        </label>
        <label className="flex flex-col gap-1 text-sm">
          Country (two letters)
          <input className={inputClass} name="country" maxLength={2} value={countryText} onChange={(event) => setCountryText(event.target.value)} />
        </label>
        <button type="submit" className={buttonClass}>
          Search
        </button>
      </form>
      <QueryView query={found} what="players">
        {({ users }) =>
          users.length === 0 ? (
            <Empty>No player matches.</Empty>
          ) : (
            <table className="w-full bg-white text-left text-sm">
              <caption className="sr-only">Players found</caption>
              <thead>
                <tr>
                  {["Player", "Country", "Segment", "Value", "Bets"].map((column) => (
                    <th key={column} scope="col" className="border-b border-slate-300 px-2 py-1">
                      {column}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {users.map((user) => (
                  <tr key={user.userId} className="cursor-pointer hover:bg-slate-50" onClick={() => navigate(`/players/${encodeURIComponent(user.userId)}`)}>
                    <td className="border-b border-slate-100 px-2 py-1">
                      <Link className="text-indigo-800 underline" to={`/players/${encodeURIComponent(user.userId)}`}>
                        {user.userId}
                      </Link>
                    </td>
                    <td className="border-b border-slate-100 px-2 py-1">{user.country}</td>
                    <td className="border-b border-slate-100 px-2 py-1">{user.clusterName}</td>
                    <td className="border-b border-slate-100 px-2 py-1">{formatMoney(user.monetary)}</td>
                    <td className="border-b border-slate-100 px-2 py-1">{user.frequency.toString()}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </QueryView>
    </>
  );
}

async function loadPlayer(userId: string) {
  const [segment, behavior] = await Promise.all([
    userClient.getUserSegment({ userId }),
    userClient.getUserBehavior({ userId }),
  ]);
  return { segment, behavior };
}

/** One player: segment with confidence, features, activity charts, restrictions. */
export function PlayerPage() {
  const { userId = "" } = useParams();
  const player = useQuery(`player:${userId}`, () => loadPlayer(userId));
  return (
    <>
      <PageHeading title={`Player ${userId}`}>
        <Link className="text-indigo-800 underline" to="/players">
          Find players
        </Link>
      </PageHeading>
      <QueryView query={player} what="the player">
        {({ segment, behavior }) => {
          const behavioural = behavior.behavioural;
          const financial = behavior.financial;
          const temporal = behavior.temporal;
          const rfm = behavior.rfm;
          return (
            <div className="flex flex-col gap-6">
              <dl className="grid grid-cols-1 gap-4 sm:grid-cols-2 lg:grid-cols-4">
                <Stat
                  label="Segment"
                  value={
                    <Link className="text-indigo-800 underline" to={`/segments/${segment.clusterId}`}>
                      {segment.clusterName}
                    </Link>
                  }
                  detail={segment.outlier ? "outlier: far from every segment centre" : undefined}
                />
                <Stat label="Confidence" value={percent(segment.confidence)} />
                <Stat label="Country" value={behavior.country || "–"} />
                <Stat label="Customer value estimate" value={formatMoney(financial?.clvEstimate)} />
              </dl>
              {temporal && (
                <div className="grid grid-cols-1 gap-4 lg:grid-cols-2">
                  <ChartFigure title="Activity by hour" data={activityByHour(temporal)} />
                  <ChartFigure title="Activity by weekday" data={activityByWeekday(temporal)} />
                </div>
              )}
              <section aria-labelledby="features-heading" className="rounded-lg border border-slate-200 bg-white p-4">
                <h2 id="features-heading" className="text-lg font-semibold">
                  Features
                </h2>
                <DataTable
                  caption="Player features"
                  columns={["Feature", "Value"]}
                  rows={[
                    ["Favourite game", behavioural ? gameName(behavioural.favouriteGame) : "–"],
                    ["Bets", behavioural?.betCount.toString() ?? "–"],
                    ["Sessions", behavioural?.sessions.toString() ?? "–"],
                    ["Average ticket", formatMoney(financial?.averageTicket)],
                    ["Total staked", formatMoney(financial?.totalStaked)],
                    ["Net gaming revenue", formatMoney(financial?.netRevenue)],
                    ["Deposits", `${financial?.depositCount ?? 0} (${formatMoney(financial?.depositSum)})`],
                    ["Withdrawal ratio", financial ? financial.withdrawalRatio.toFixed(2) : "–"],
                    ["Bonus share", financial ? percent(financial.bonusShare) : "–"],
                    ["Recency", rfm ? `${rfm.recencyDays.toFixed(1)} days` : "–"],
                    ["RFM scores", rfm ? `R${rfm.recencyScore} F${rfm.frequencyScore} M${rfm.monetaryScore}` : "–"],
                    ["Active days", temporal?.activeDays.toString() ?? "–"],
                  ]}
                />
              </section>
              <section aria-labelledby="restrictions-heading" className="rounded-lg border border-slate-200 bg-white p-4">
                <h2 id="restrictions-heading" className="text-lg font-semibold">
                  Restrictions
                </h2>
                <p className="text-slate-700">
                  Not available on this server yet: the restriction RPCs of UserService arrive with campaigns.
                </p>
              </section>
            </div>
          );
        }}
      </QueryView>
    </>
  );
}
