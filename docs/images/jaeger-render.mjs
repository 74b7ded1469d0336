// Renders an answer of Jaeger's query API (GET /api/traces, JSON on stdin) as
// a static HTML timeline on stdout: one row per span, its bar from start to
// end on a shared time axis, its kind, status and main tags. This draws the
// API's data; it is not Jaeger's UI (the Go-module build of Jaeger serves
// none). Used by docs/images/jaeger-spans.sh.
import { readFileSync } from 'node:fs';

const answer = JSON.parse(readFileSync(0, 'utf8'));
const spans = answer.data.flatMap((t) => t.spans).sort((a, b) => a.startTime - b.startTime);
if (spans.length === 0) throw new Error('no spans in the answer');
const tags = (s) => Object.fromEntries(s.tags.map((t) => [t.key, t.value]));
const t0 = spans[0].startTime;
const t1 = Math.max(...spans.map((s) => s.startTime + s.duration));
const width = 360;
const x = (us) => ((us - t0) / Math.max(1, t1 - t0)) * width;
const esc = (v) => String(v).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const ms = (us) => (us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`);

const rows = spans
  .map((s) => {
    const t = tags(s);
    const error = t.error === true;
    const left = x(s.startTime);
    const bar = Math.max(2, x(s.startTime + s.duration) - left);
    return `<tr>
  <td class="op">${esc(s.operationName)}</td>
  <td>${esc(t['span.kind'])}</td>
  <td class="${error ? 'err' : ''}">${error ? `ERROR: ${esc(t['otel.status_description'] ?? '')}` : 'unset'}</td>
  <td class="axis"><div class="bar ${error ? 'errbar' : ''}" style="margin-left:${left.toFixed(1)}px;width:${bar.toFixed(1)}px"></div></td>
  <td class="num">${ms(s.duration)}</td>
  <td class="tags">${esc(`${t['source.address']}:${t['source.port']} → ${t['destination.address']}:${t['destination.port']}`)}, ${esc(t['flowtap.flow.close_reason'] ?? '')} by ${esc(t['flowtap.flow.closed_by'] ?? '')}</td>
</tr>`;
  })
  .join('\n');

const service = Object.values(answer.data[0].processes)[0].serviceName;
process.stdout.write(`<!doctype html><html><head><meta charset="utf-8"><style>
body { font: 13px/1.4 sans-serif; margin: 16px; color: #222; }
h1 { font-size: 15px; margin: 0 0 2px; } p { margin: 0 0 10px; color: #555; }
table { border-collapse: collapse; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }
th { font-weight: 600; background: #f4f4f4; } .op { font-family: monospace; } .num { text-align: right; font-family: monospace; }
.tags { font-family: monospace; color: #444; } .axis { width: ${width}px; } .bar { height: 10px; background: #4a8fd4; border-radius: 2px; }
.errbar { background: #d9534f; } .err { color: #c9302c; font-weight: 600; }
</style></head><body>
<h1>Jaeger query API: GET /api/traces?service=${esc(service)}: ${spans.length} spans, ${answer.data.length} traces</h1>
<p>Flows from flowtap --spans otlp, as Jaeger v1.75.0 stored them. Drawn from the API's JSON by docs/images/jaeger-render.mjs (this Jaeger build has no web UI). Time axis: ${ms(t1 - t0)}.</p>
<table><tr><th>operation</th><th>kind</th><th>status</th><th>start → end</th><th>duration</th><th>flow (tags)</th></tr>
${rows}
</table></body></html>
`);
