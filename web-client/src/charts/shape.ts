// Pure functions that turn API messages into chart data and the text table shown beside
// every chart (the accessible alternative). No Chart.js and no React here.

/** One series of a chart: a value per label, or a [low, high] range per label. */
export interface Series {
  label: string;
  values: number[] | [number, number][];
}

/** A chart and its text alternative. */
export interface ChartData {
  labels: string[];
  series: Series[];
  table: { columns: string[]; rows: string[][] };
}

interface ClusterLike {
  clusterId: bigint;
  name: string;
  size: bigint;
  share: number;
}

interface MoneyLike {
  currencyCode: string;
  amount: string;
}

interface DeviationLike {
  feature: string;
  groupMean: number;
  populationMean: number;
  zScore: number;
}

const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
const decimal = (value: number) =>
  Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(2);

/** A money amount as a number (0 when absent or malformed). */
export function moneyValue(money: MoneyLike | undefined): number {
  const value = Number(money?.amount ?? "0");
  return Number.isFinite(value) ? value : 0;
}

/** `1234.5, EUR` -> `EUR 1,234.50`. */
export function formatMoney(money: MoneyLike | undefined): string {
  if (!money) return "–";
  const amount = moneyValue(money).toLocaleString("en-GB", {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });
  return `${money.currencyCode} ${amount}`.trim();
}

/** `night_share` -> `night share`. */
export function featureLabel(feature: string): string {
  return feature.replace(/_/g, " ");
}

/** Players per cluster, largest first. */
export function clusterSizes(clusters: ClusterLike[]): ChartData {
  const sorted = [...clusters].sort((left, right) => Number(right.size - left.size));
  return {
    labels: sorted.map((cluster) => cluster.name),
    series: [{ label: "Players", values: sorted.map((cluster) => Number(cluster.size)) }],
    table: {
      columns: ["Segment", "Players", "Share"],
      rows: sorted.map((cluster) => [
        cluster.name,
        cluster.size.toString(),
        percent(cluster.share),
      ]),
    },
  };
}

/** Total and average monetary value per cluster, in the order given. */
export function clusterValues(
  clusters: { name: string; totalMonetary?: MoneyLike; averageMonetary?: MoneyLike }[],
): ChartData {
  return {
    labels: clusters.map((cluster) => cluster.name),
    series: [
      { label: "Total value", values: clusters.map((cluster) => moneyValue(cluster.totalMonetary)) },
    ],
    table: {
      columns: ["Segment", "Total value", "Average value per player"],
      rows: clusters.map((cluster) => [
        cluster.name,
        formatMoney(cluster.totalMonetary),
        formatMoney(cluster.averageMonetary),
      ]),
    },
  };
}

/**
 * The features that set a cluster apart: the `limit` largest deviations from the
 * population by |z|, as z-scores, with both means in the table.
 */
export function distinctiveFeatures(profile: DeviationLike[], limit = 8): ChartData {
  const top = [...profile]
    .filter((deviation) => Number.isFinite(deviation.zScore))
    .sort((left, right) => Math.abs(right.zScore) - Math.abs(left.zScore))
    .slice(0, limit);
  return {
    labels: top.map((deviation) => featureLabel(deviation.feature)),
    series: [{ label: "Standard deviations from the population", values: top.map((d) => d.zScore) }],
    table: {
      columns: ["Feature", "Segment mean", "Population mean", "z-score"],
      rows: top.map((deviation) => [
        featureLabel(deviation.feature),
        decimal(deviation.groupMean),
        decimal(deviation.populationMean),
        deviation.zScore.toFixed(2),
      ]),
    },
  };
}

export const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/**
 * A player's activity by time of day: the night (00–06) share against the rest, and the
 * preferred hour. The API gives shares and the preferred hour, not a per-hour histogram.
 */
export function activityByHour(temporal: { nightShare: number; preferredHour: number }): ChartData {
  const night = clampShare(temporal.nightShare);
  return {
    labels: ["Night (00–06)", "Day (06–24)"],
    series: [{ label: "Share of activity", values: [night * 100, (1 - night) * 100] }],
    table: {
      columns: ["Period", "Share of activity"],
      rows: [
        ["Night (00–06)", percent(night)],
        ["Day (06–24)", percent(1 - night)],
        ["Preferred hour", `${String(temporal.preferredHour).padStart(2, "0")}:00`],
      ],
    },
  };
}

/** A player's activity by weekday: weekend against weekdays, and the preferred weekday (0 = Monday). */
export function activityByWeekday(temporal: {
  weekendShare: number;
  preferredWeekday: number;
}): ChartData {
  const weekend = clampShare(temporal.weekendShare);
  return {
    labels: ["Weekdays", "Weekend"],
    series: [{ label: "Share of activity", values: [(1 - weekend) * 100, weekend * 100] }],
    table: {
      columns: ["Days", "Share of activity"],
      rows: [
        ["Weekdays", percent(1 - weekend)],
        ["Weekend", percent(weekend)],
        ["Preferred weekday", WEEKDAYS[temporal.preferredWeekday] ?? "unknown"],
      ],
    },
  };
}

function clampShare(share: number): number {
  if (!Number.isFinite(share)) return 0;
  return Math.min(1, Math.max(0, share));
}

/** A conversion uplift and its 95% interval, in percentage points. */
export interface Uplift {
  treatmentRate: number;
  controlRate: number;
  upliftPoints: number;
  lowPoints: number;
  highPoints: number;
}

interface FunnelLike {
  players: bigint;
  converted: bigint;
}

/**
 * Treatment minus control conversion with a normal (Wald) 95% interval of the difference
 * of two proportions; undefined when either group is empty.
 */
export function conversionUplift(treatment: FunnelLike, control: FunnelLike): Uplift | undefined {
  const treated = Number(treatment.players);
  const controlled = Number(control.players);
  if (treated <= 0 || controlled <= 0) return undefined;
  const treatmentRate = Number(treatment.converted) / treated;
  const controlRate = Number(control.converted) / controlled;
  const standardError = Math.sqrt(
    (treatmentRate * (1 - treatmentRate)) / treated + (controlRate * (1 - controlRate)) / controlled,
  );
  const uplift = treatmentRate - controlRate;
  const margin = 1.96 * standardError;
  return {
    treatmentRate,
    controlRate,
    upliftPoints: uplift * 100,
    lowPoints: (uplift - margin) * 100,
    highPoints: (uplift + margin) * 100,
  };
}

/** The uplift as a floating bar from the interval's low to its high end. */
export function upliftChart(uplift: Uplift): ChartData {
  const points = (value: number) => `${value.toFixed(2)} pp`;
  return {
    labels: ["Conversion uplift"],
    series: [{ label: "95% interval (percentage points)", values: [[uplift.lowPoints, uplift.highPoints]] }],
    table: {
      columns: ["Measure", "Value"],
      rows: [
        ["Treatment conversion", percent(uplift.treatmentRate)],
        ["Control conversion", percent(uplift.controlRate)],
        ["Uplift", points(uplift.upliftPoints)],
        ["95% interval", `${points(uplift.lowPoints)} to ${points(uplift.highPoints)}`],
      ],
    },
  };
}

/** Two models' segments side by side: each segment's share of players, by segment name. */
export function compareModels(
  left: { label: string; clusters: ClusterLike[] },
  right: { label: string; clusters: ClusterLike[] },
): ChartData {
  const names = [...new Set([...left.clusters, ...right.clusters].map((cluster) => cluster.name))].sort();
  const shareOf = (clusters: ClusterLike[], name: string) =>
    clusters.filter((cluster) => cluster.name === name).reduce((sum, cluster) => sum + cluster.share, 0);
  return {
    labels: names,
    series: [
      { label: left.label, values: names.map((name) => shareOf(left.clusters, name) * 100) },
      { label: right.label, values: names.map((name) => shareOf(right.clusters, name) * 100) },
    ],
    table: {
      columns: ["Segment", left.label, right.label],
      rows: names.map((name) => [
        name,
        percent(shareOf(left.clusters, name)),
        percent(shareOf(right.clusters, name)),
      ]),
    },
  };
}
