import { Link, useSearchParams } from "react-router";
import { clusterClient } from "../api/clients";
import { useQuery } from "../api/useQuery";
import { ChartFigure } from "../charts/ChartFigure";
import { clusterSizes, clusterValues, formatMoney } from "../charts/shape";
import { Empty, PageHeading, QueryView } from "../components/States";

async function loadSegments(modelId: bigint) {
  const listed = await clusterClient.listClusters({ pageSize: 100, modelId });
  const analytics = await Promise.all(
    listed.clusters.map((cluster) => clusterClient.getClusterAnalytics({ clusterId: cluster.clusterId })),
  );
  return { modelId: listed.modelId, clusters: listed.clusters, analytics };
}

/** All segments of a model (the active one unless `?model=` names another). */
export function SegmentsPage() {
  const [searchParams] = useSearchParams();
  const modelParameter = searchParams.get("model") ?? "";
  const modelId = /^\d+$/.test(modelParameter) ? BigInt(modelParameter) : 0n;
  const segments = useQuery(`segments:${modelId}`, () => loadSegments(modelId));
  return (
    <>
      <PageHeading title="Segments" />
      <QueryView query={segments} what="segments">
        {({ modelId: shownModel, clusters, analytics }) =>
          clusters.length === 0 ? (
            <Empty>This model has no segments.</Empty>
          ) : (
            <div className="flex flex-col gap-6">
              <p className="text-slate-700">Model #{shownModel.toString()}</p>
              <div className="grid grid-cols-1 gap-4 lg:grid-cols-2">
                <ChartFigure title="Segment size (players)" data={clusterSizes(clusters)} horizontal />
                <ChartFigure
                  title="Segment value (total monetary)"
                  data={clusterValues(
                    analytics.map((entry, index) => ({
                      name: entry.cluster?.name ?? clusters[index].name,
                      totalMonetary: entry.totalMonetary,
                      averageMonetary: entry.averageMonetary,
                    })),
                  )}
                  horizontal
                />
              </div>
              <table className="w-full bg-white text-left text-sm">
                <caption className="sr-only">Segments</caption>
                <thead>
                  <tr>
                    {["Segment", "Players", "Share", "Average value", "Description"].map((column) => (
                      <th key={column} scope="col" className="border-b border-slate-300 px-2 py-1">
                        {column}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {clusters.map((cluster, index) => (
                    <tr key={cluster.clusterId.toString()}>
                      <td className="border-b border-slate-100 px-2 py-1">
                        <Link className="text-indigo-800 underline" to={`/segments/${cluster.clusterId}`}>
                          {cluster.name}
                        </Link>
                      </td>
                      <td className="border-b border-slate-100 px-2 py-1">{cluster.size.toString()}</td>
                      <td className="border-b border-slate-100 px-2 py-1">{(cluster.share * 100).toFixed(1)}%</td>
                      <td className="border-b border-slate-100 px-2 py-1">
                        {formatMoney(analytics[index]?.averageMonetary)}
                      </td>
                      <td className="border-b border-slate-100 px-2 py-1">{cluster.description}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </QueryView>
    </>
  );
}
