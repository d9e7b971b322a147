// Prints the gzipped size of the JavaScript the dashboard loads first (the scripts and
// module preloads index.html names) and fails above the budget.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 300 * 1024;
const dist = new URL("../dist/", import.meta.url).pathname;
const html = readFileSync(join(dist, "index.html"), "utf8");
const scripts = [...html.matchAll(/<(?:script[^>]*\bsrc|link[^>]*rel="modulepreload"[^>]*\bhref)="\/([^"]+\.js)"/g)].map(
  (match) => match[1],
);
if (scripts.length === 0) {
  console.error("size check: index.html names no script");
  process.exit(1);
}
let total = 0;
for (const script of new Set(scripts)) {
  const gzipped = gzipSync(readFileSync(join(dist, script)), { level: 9 }).length;
  total += gzipped;
  console.log(`  ${script}: ${(gzipped / 1024).toFixed(1)} kB gzipped`);
}
const verdict = total <= BUDGET_BYTES ? "within" : "OVER";
console.log(`initial JavaScript: ${(total / 1024).toFixed(1)} kB gzipped, ${verdict} the ${BUDGET_BYTES / 1024} kB budget`);
if (total > BUDGET_BYTES) process.exit(1);
