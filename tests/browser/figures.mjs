// Writes the dashboard's measured figures (page weight, first render at 1,000 backends x 10
// servers) into docs/dashboard.md, between the "dashboard-figures" markers, from the timings.json
// the browser tests leave in their artifacts. Run by `make dashboard-figures`; never edit the
// block by hand.
//   node tests/browser/figures.mjs ARTIFACTS/timings.json docs/dashboard.md [BUILD_TYPE]
import fs from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';

const [timingsPath, docPath, buildType = 'Debug'] = process.argv.slice(2);
if (!timingsPath || !docPath) {
  console.error('usage: figures.mjs TIMINGS_JSON DOC_MD');
  process.exit(2);
}
const t = JSON.parse(fs.readFileSync(timingsPath, 'utf8'));
const scale = t.scale_1000x10;
for (const [what, v] of [['page_weight_bytes', t.page_weight_bytes], ['scale_1000x10', scale],
  ['discovery_change_to_page_ms', t.discovery_change_to_page_ms]]) {
  if (v === undefined) {
    console.error(timingsPath + ': no ' + what + ' (did every browser test run?)');
    process.exit(1);
  }
}
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  // Changes outside docs/ (which this run writes) not committed: say so.
  if (execFileSync('git', ['status', '--porcelain', '--', '.', ':!docs'], { encoding: 'utf8' }).trim()) commit += '-dirty';
} catch { /* not a git tree */ }
const ms = (x) => Math.round(x) + ' ms';
const kb = (b) => (b / 1024).toFixed(1) + ' KB';
const met = (ok) => (ok ? 'yes' : '**no**');
const rows = [
  ['page weight (' + t.page_requests.join(', ') + ')', '≤ 150 KB', kb(t.page_weight_bytes), met(t.page_weight_bytes <= 150 * 1024)],
  ['first render, 1,000 backends × 10 servers (`first_render_ms`)', '≤ 300 ms', ms(scale.first_render_ms), met(scale.first_render_ms <= 300)],
  ['… of which the daemon answering `/status` (`status_server_ms`)', '', ms(scale.status_server_ms), ''],
  ['… of which the page\'s own work (`first_render_only_ms`)', '', ms(scale.first_render_only_ms), ''],
  ['`/status?compact` at that size (`status_bytes`)', '', kb(scale.status_bytes), ''],
  ['all 10,000 rows in the DOM (`complete_render_ms`)', '', ms(scale.complete_render_ms), ''],
  ['discovery change → row UP on the page (`discovery_change_to_page_ms`)', '≤ 2 s', ms(t.discovery_change_to_page_ms), met(t.discovery_change_to_page_ms <= 2000)],
];
if (t.haproxy_down_to_page_ms !== undefined) {
  rows.push(['HAProxy\'s own change: a server\'s port closes → `DOWN` on the page, HAProxy\'s 3 failed checks 300 ms apart included (`haproxy_down_to_page_ms`)', '', ms(t.haproxy_down_to_page_ms), '']);
}
const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
const block = [
  '<!-- dashboard-figures: begin (written by `make dashboard-figures` from the browser tests\' timings.json; do not edit) -->',
  '| figure | target | measured | met |',
  '|---|---|---|---|',
  ...rows.map((r) => '| ' + r.join(' | ') + ' |'),
  '',
  'Measured by `make dashboard-figures` (' + buildType + ' build) at commit ' + commit + ' on ' + new Date().toISOString().slice(0, 10) +
    ' (' + os.cpus().length + ' CPUs, load average after the run ' + load + ').',
  '<!-- dashboard-figures: end -->',
].join('\n');
const doc = fs.readFileSync(docPath, 'utf8');
const re = /<!-- dashboard-figures: begin[^\n]*-->[\s\S]*?<!-- dashboard-figures: end -->/;
if (!re.test(doc)) {
  console.error(docPath + ': no dashboard-figures markers');
  process.exit(1);
}
fs.writeFileSync(docPath, doc.replace(re, block));
console.log(block);
