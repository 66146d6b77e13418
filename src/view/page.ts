/**
 * The self-contained timeline page: HTML, CSS, the timeline as embedded JSON and the browser code inlined, under a
 * Content-Security-Policy that forbids every network fetch.
 *
 * The browser code (src/view/client/) is bundled by esbuild. `npm run build` writes the bundle beside the compiled
 * page module (dist/view/client.bundle.js), which is what an installed `irqfwd view` reads; when it is missing (tests
 * and tsx run the TypeScript sources), the bundle is built in memory with esbuild's API from client/main.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TimelineData } from './timelineData.js';

export const CLIENT_BUNDLE = 'client.bundle.js';

let cached: Promise<string> | undefined;

/** The bundled browser code. */
export function clientBundle(): Promise<string> {
  cached ??= loadBundle();
  return cached;
}

async function loadBundle(): Promise<string> {
  const prebuilt = fileURLToPath(new URL(`./${CLIENT_BUNDLE}`, import.meta.url));
  if (existsSync(prebuilt)) return readFileSync(prebuilt, 'utf8');
  const entry = fileURLToPath(new URL('./client/main.ts', import.meta.url));
  if (!existsSync(entry))
    throw new Error(`the timeline's browser code is missing: neither ${prebuilt} nor ${entry} exists (npm run build)`);
  const esbuild = await import('esbuild');
  const out = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'));

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:13px/1.35 system-ui,sans-serif;color:#1b262c;background:#fff;display:flex;flex-direction:column;height:100vh}
#header{display:flex;flex-wrap:wrap;align-items:center;gap:6px 14px;padding:6px 10px;border-bottom:1px solid #cfd8dc;background:#f5f7fa}
#header h1{font-size:15px;margin:0;font-weight:600}
.controls button{font:12px system-ui,sans-serif;margin-right:4px;padding:2px 8px;border:1px solid #90a4ae;border-radius:3px;background:#fff;cursor:pointer}
.legend{display:flex;align-items:center;gap:4px;font-size:12px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;border:1px solid #0002}
.legend-label{margin-right:8px}
.hint{color:#607d8b;font-size:11px}
#banner .violation{background:#ffebee;color:#b71c1c;border-bottom:1px solid #ef9a9a;padding:5px 10px;font-weight:600;cursor:pointer}
#main{flex:1;display:flex;min-height:0}
#scroll{flex:1;overflow:auto;position:relative}
#axisrow{position:sticky;top:0;z-index:2;display:flex;background:#f5f7fa;border-bottom:1px solid #cfd8dc}
#axispad{width:260px;flex:none;font-size:11px;color:#607d8b;padding:8px 6px}
#body{display:flex}
#labels{width:260px;flex:none;position:relative;border-right:1px solid #cfd8dc}
#plot{flex:1;min-width:0;position:relative}
#axis,#lanes{display:block}
.run-label{position:absolute;left:0;right:0;height:24px;padding:4px 6px;background:#eceff1;font-weight:600}
.lane-label{position:absolute;left:0;right:0;padding:0 6px;display:flex;align-items:center;font:12px ui-monospace,monospace;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;border-bottom:1px solid #e0e4e8}
.kind-line{color:#1565c0}.kind-gic{color:#c62828}.kind-cpu{color:#e65100}.kind-vcpu{color:#2e7d32}.kind-lr{color:#6a1b9a}.kind-check{color:#5d4037}
#side{width:330px;flex:none;overflow:auto;border-left:1px solid #cfd8dc;padding:6px 10px;font-size:12px}
#side h2{font-size:13px;margin:8px 0 4px}
pre.fields{margin:0;font:12px ui-monospace,monospace;white-space:pre-wrap;background:#f5f7fa;padding:6px;border-radius:3px}
ol.chain,ol.step-list{margin:0;padding-left:22px;font:12px ui-monospace,monospace}
ol.chain li,ol.step-list li{cursor:pointer;padding:1px 0}
ol.chain li.current{font-weight:700;color:#c62828}
ol.step-list li.marked{background:#fff3c4;border-left:3px solid #d32f2f;padding-left:4px;font-weight:600}
ol.step-list.only-marked li.unmarked{display:none}
.latency canvas{display:block;margin:2px 0 4px}
.stage-legend{display:flex;flex-wrap:wrap;align-items:center;gap:2px 10px;font:11px ui-monospace,monospace;margin-bottom:4px}
.key{white-space:nowrap;display:inline-flex;align-items:center;gap:3px}
.hist-title{font-size:11px;color:#37474f;margin-top:4px}
#tip{position:fixed;z-index:5;max-width:460px;background:#263238;color:#fff;font:12px ui-monospace,monospace;white-space:pre-wrap;padding:6px 8px;border-radius:4px;pointer-events:none;box-shadow:0 2px 8px #0005}
`;

/** The page for a timeline: one HTML string, no external resource. */
export async function buildViewPage(data: TimelineData): Promise<string> {
  const js = (await clientBundle()).replace(/<\/script/gi, '<\\/script');
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)} — irqfwd view</title>
<style>${STYLE}</style>
</head><body>
<div id="header"></div>
<div id="banner"></div>
<div id="main">
<div id="scroll"><div id="axisrow"><div id="axispad">time (from the first IRQ)</div><canvas id="axis"></canvas></div>
<div id="body"><div id="labels"></div><div id="plot"><canvas id="lanes"></canvas></div></div></div>
<div id="side"><div id="steps" hidden></div><div id="latency"></div><div id="details"><h2>Selected event</h2><p>Hover an event to see its fields; click it to pin them here with its interrupt's causal chain.</p></div></div>
</div>
<div id="tip" hidden></div>
<script type="application/json" id="irqfwd-data">${json}</script>
<script>${js}</script>
</body></html>
`;
}
