import {
  BarElement,
  CategoryScale,
  Chart as ChartJS,
  Legend,
  LinearScale,
  Tooltip,
} from "chart.js";
import { Bar } from "react-chartjs-2";
import { useId } from "react";
import type { ChartData } from "./shape";

ChartJS.register(BarElement, CategoryScale, LinearScale, Tooltip, Legend);

const COLOURS = ["#4338ca", "#0f766e", "#b45309", "#be123c"];

/** A bar chart with its data as a text table right below it (the accessible alternative). */
export function ChartFigure({
  title,
  data,
  horizontal = false,
}: {
  title: string;
  data: ChartData;
  horizontal?: boolean;
}) {
  const captionId = useId();
  return (
    <figure className="rounded-lg border border-slate-200 bg-white p-4" aria-labelledby={captionId}>
      <figcaption id={captionId} className="mb-2 font-semibold">
        {title}
      </figcaption>
      <div className="h-64">
        <Bar
          role="img"
          aria-label={`${title} chart; the same data is in the table below`}
          data={{
            labels: data.labels,
            datasets: data.series.map((series, index) => ({
              label: series.label,
              data: series.values,
              backgroundColor: COLOURS[index % COLOURS.length],
            })),
          }}
          options={{
            indexAxis: horizontal ? "y" : "x",
            maintainAspectRatio: false,
            animation: false,
            plugins: { legend: { display: data.series.length > 1 } },
          }}
        />
      </div>
      <details className="mt-2">
        <summary className="cursor-pointer text-sm text-indigo-800">Data table: {title}</summary>
        <DataTable columns={data.table.columns} rows={data.table.rows} caption={title} />
      </details>
    </figure>
  );
}

/** A plain table of text cells. */
export function DataTable({
  columns,
  rows,
  caption,
}: {
  columns: string[];
  rows: string[][];
  caption: string;
}) {
  return (
    <table className="mt-2 w-full text-left text-sm">
      <caption className="sr-only">{caption}</caption>
      <thead>
        <tr>
          {columns.map((column) => (
            <th key={column} scope="col" className="border-b border-slate-300 px-2 py-1">
              {column}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, rowIndex) => (
          <tr key={rowIndex}>
            {row.map((cell, cellIndex) => (
              <td key={cellIndex} className="border-b border-slate-100 px-2 py-1">
                {cell}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
