import { describe, expect, it } from "vitest";
import {
  activityByHour,
  activityByWeekday,
  clusterSizes,
  clusterValues,
  compareModels,
  conversionUplift,
  distinctiveFeatures,
  formatMoney,
  upliftChart,
} from "./shape";

const cluster = (clusterId: bigint, name: string, size: bigint, share: number) => ({ clusterId, name, size, share });

describe("chart data shaping", () => {
  it("orders segments by size with a matching table", () => {
    const data = clusterSizes([cluster(1n, "Casual", 100n, 0.25), cluster(2n, "Night Owl Casino", 300n, 0.75)]);
    expect(data.labels).toEqual(["Night Owl Casino", "Casual"]);
    expect(data.series[0].values).toEqual([300, 100]);
    expect(data.table.rows).toEqual([
      ["Night Owl Casino", "300", "75.0%"],
      ["Casual", "100", "25.0%"],
    ]);
  });

  it("charts segment value from money strings", () => {
    const data = clusterValues([
      { name: "VIP", totalMonetary: { currencyCode: "EUR", amount: "1234.5" }, averageMonetary: { currencyCode: "EUR", amount: "12" } },
      { name: "Casual" },
    ]);
    expect(data.series[0].values).toEqual([1234.5, 0]);
    expect(data.table.rows[0]).toEqual(["VIP", "EUR 1,234.50", "EUR 12.00"]);
    expect(data.table.rows[1][1]).toBe("–");
  });

  it("keeps the features with the largest deviations", () => {
    const deviation = (feature: string, zScore: number) => ({ feature, groupMean: 1, populationMean: 0.5, zScore });
    const data = distinctiveFeatures(
      [deviation("night_share", 2.5), deviation("tenure_days", 0.1), deviation("share_crash", -3), deviation("bad", Number.NaN)],
      2,
    );
    expect(data.labels).toEqual(["share crash", "night share"]);
    expect(data.series[0].values).toEqual([-3, 2.5]);
    expect(data.table.columns).toContain("Population mean");
  });

  it.each([
    { nightShare: 0.25, preferredHour: 3, expected: [25, 75], hour: "03:00" },
    { nightShare: 1.4, preferredHour: 22, expected: [100, 0], hour: "22:00" },
    { nightShare: Number.NaN, preferredHour: 9, expected: [0, 100], hour: "09:00" },
  ])("shapes hour activity for night share $nightShare", ({ nightShare, preferredHour, expected, hour }) => {
    const data = activityByHour({ nightShare, preferredHour });
    expect(data.series[0].values).toEqual(expected);
    expect(data.table.rows[2]).toEqual(["Preferred hour", hour]);
  });

  it("shapes weekday activity with the preferred day", () => {
    const data = activityByWeekday({ weekendShare: 0.4, preferredWeekday: 5 });
    expect(data.series[0].values).toEqual([60, 40]);
    expect(data.table.rows[2]).toEqual(["Preferred weekday", "Saturday"]);
  });

  it("computes the uplift and its 95% interval", () => {
    const uplift = conversionUplift({ players: 1000n, converted: 150n }, { players: 1000n, converted: 100n });
    expect(uplift?.upliftPoints).toBeCloseTo(5, 6);
    // se = sqrt(.15*.85/1000 + .1*.9/1000) = 0.014748; 1.96 se = 2.89 points
    expect(uplift?.lowPoints).toBeCloseTo(2.109, 2);
    expect(uplift?.highPoints).toBeCloseTo(7.891, 2);
    const chart = upliftChart(uplift!);
    expect(chart.series[0].values).toEqual([[uplift!.lowPoints, uplift!.highPoints]]);
    expect(chart.table.rows.map((row) => row[0])).toEqual(["Treatment conversion", "Control conversion", "Uplift", "95% interval"]);
  });

  it("has no uplift without a control group", () => {
    expect(conversionUplift({ players: 10n, converted: 1n }, { players: 0n, converted: 0n })).toBeUndefined();
  });

  it("compares two models by segment name", () => {
    const data = compareModels(
      { label: "Model #1", clusters: [cluster(1n, "Casual", 80n, 0.8), cluster(2n, "VIP", 20n, 0.2)] },
      { label: "Model #2", clusters: [cluster(3n, "Casual", 70n, 0.7), cluster(4n, "Crash", 30n, 0.3)] },
    );
    expect(data.labels).toEqual(["Casual", "Crash", "VIP"]);
    expect(data.series[0].values[0]).toBeCloseTo(80);
    expect(data.series[1].values[1]).toBeCloseTo(30);
    expect(data.table.rows[2]).toEqual(["VIP", "20.0%", "0.0%"]);
  });

  it("formats missing money as a dash", () => {
    expect(formatMoney(undefined)).toBe("–");
  });
});
