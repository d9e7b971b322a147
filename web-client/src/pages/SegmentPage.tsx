import { useState, type FormEvent } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { clusterClient, userClient } from "../api/clients";
import { useQuery } from "../api/useQuery";
import { ChartFigure } from "../charts/ChartFigure";
import { distinctiveFeatures, formatMoney } from "../charts/shape";
import { Empty, PageHeading, QueryView, Stat, buttonClass, inputClass, secondaryButtonClass } from "../components/States";

const PAGE_SIZE = 20;

interface MemberRow {
  userId: string;
  country: string;
  monetary: string;
  detail: string;
}

async function loadMembers(clusterId: bigint, search: string, pageToken: string) {
  if (search) {
    const found = await userClient.searchUsers({ clusterId, userIdPrefix: search, pageSize: PAGE_SIZE, pageToken });
    return {
      rows: found.users.map<MemberRow>((user) => ({
        userId: user.userId,
        country: user.country,
        monetary: formatMoney(user.monetary),
        detail: `${user.frequency} bets`,
      })),
      nextPageToken: found.nextPageToken,
    };
  }
  const listed = await clusterClient.listClusterUsers({ clusterId, pageSize: PAGE_SIZE, pageToken });
  return {
    rows: listed.users.map<MemberRow>((member) => ({
      userId: member.userId,
      country: member.country,
      monetary: formatMoney(member.monetary),
      detail: `confidence ${(member.confidence * 100).toFixed(0)}%${member.outlier ? ", outlier" : ""}`,
    })),
    nextPageToken: listed.nextPageToken,
  };
}

/** One segment: profile against the population, analytics, members with search and paging. */
export function SegmentPage() {
  const { clusterId = "" } = useParams();
  const [searchParams, setSearchParams] = useSearchParams();
  const search = searchParams.get("q") ?? "";
  const pageToken = searchParams.get("page") ?? "";
  const [searchText, setSearchText] = useState(search);
  const id = /^\d+$/.test(clusterId) ? BigInt(clusterId) : 0n;
  const analytics = useQuery(`segment:${id}`, () => clusterClient.getClusterAnalytics({ clusterId: id }));
  const members = useQuery(`members:${id}:${search}:${pageToken}`, () => loadMembers(id, search, pageToken));

  const submitSearch = (event: FormEvent) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (searchText.trim()) next.set("q", searchText.trim());
    setSearchParams(next);
  };
  const nextPage = (token: string) => {
    const next = new URLSearchParams(searchParams);
    next.set("page", token);
    setSearchParams(next);
  };

  return (
    <QueryView query={analytics} what="the segment">
      {({ cluster, ...segment }) => (
        <div className="flex flex-col gap-6">
          <PageHeading title={cluster?.name ?? `Segment ${clusterId}`}>
            <Link className="text-indigo-800 underline" to="/segments">
              All segments
            </Link>
          </PageHeading>
          <p className="text-slate-800">{cluster?.description}</p>
          <dl className="grid grid-cols-1 gap-4 sm:grid-cols-2 lg:grid-cols-4">
            <Stat label="Players" value={cluster?.size.toString() ?? "–"} detail={cluster && `${(cluster.share * 100).toFixed(1)}% of all`} />
            <Stat label="Average value" value={formatMoney(segment.averageMonetary)} />
            <Stat label="Net gaming revenue" value={formatMoney(segment.totalNetRevenue)} />
            <Stat label="Average recency" value={`${segment.averageRecencyDays.toFixed(1)} days`} />
          </dl>
          {segment.features.length > 0 || (cluster?.profile.length ?? 0) > 0 ? (
            <ChartFigure
              title="What sets this segment apart (z-score against the population)"
              data={distinctiveFeatures(segment.features.length > 0 ? segment.features : (cluster?.profile ?? []))}
              horizontal
            />
          ) : (
            <Empty>No feature profile for this segment.</Empty>
          )}
          <section aria-labelledby="members-heading" className="rounded-lg border border-slate-200 bg-white p-4">
            <h2 id="members-heading" className="mb-2 text-lg font-semibold">
              Members
            </h2>
            <form role="search" onSubmit={submitSearch} className="mb-3 flex flex-wrap items-end gap-2">
              <label className="flex flex-col gap-1 text-sm">
                Player id starts with
                <input
                  className={inputClass}
                  name="q"
                  value={searchText}
                  onChange={(event) => setSearchText(event.target.value)}
                />
              </label>
              <button type="submit" className={buttonClass}>
                Search
              </button>
              {(search || pageToken) && (
                <button type="button" className={secondaryButtonClass} onClick={() => setSearchParams(new URLSearchParams())}>
                  First page, no search
                </button>
              )}
            </form>
            <QueryView query={members} what="members">
              {({ rows, nextPageToken }) =>
                rows.length === 0 ? (
                  <Empty>No player matches.</Empty>
                ) : (
                  <>
                    <table className="w-full text-left text-sm">
                      <caption className="sr-only">Members of the segment</caption>
                      <thead>
                        <tr>
                          {["Player", "Country", "Value", "Detail"].map((column) => (
                            <th key={column} scope="col" className="border-b border-slate-300 px-2 py-1">
                              {column}
                            </th>
                          ))}
                        </tr>
                      </thead>
                      <tbody>
                        {rows.map((row) => (
                          <tr key={row.userId}>
                            <td className="border-b border-slate-100 px-2 py-1">
                              <Link className="text-indigo-800 underline" to={`/players/${encodeURIComponent(row.userId)}`}>
                                {row.userId}
                              </Link>
                            </td>
                            <td className="border-b border-slate-100 px-2 py-1">{row.country}</td>
                            <td className="border-b border-slate-100 px-2 py-1">{row.monetary}</td>
                            <td className="border-b border-slate-100 px-2 py-1">{row.detail}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                    {nextPageToken && (
                      <button type="button" className={`${secondaryButtonClass} mt-3`} onClick={() => nextPage(nextPageToken)}>
                        Next page
                      </button>
                    )}
                  </>
                )
              }
            </QueryView>
          </section>
        </div>
      )}
    </QueryView>
  );
}
