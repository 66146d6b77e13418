/// <reference lib="dom" />
/**
 * The latency panel beside the lanes: one IRQ's causal chain as stacked stages, run against run (normal vs
 * forwarded, the same interrupt sequence number), the mean per IRQ of each stage, and histograms of the delivery
 * and whole-chain latency on bins the runs share.
 */
import { chainStages, DELIVERED, HIST_BINS, type Histogram, type Latency, type Stage } from '../latency.js';
import type { TimelineData } from '../timelineData.js';
import { fmtNs } from './render.js';

const STAGE_COLORS = [
  '#5c6bc0',
  '#ef6c00',
  '#26a69a',
  '#ab47bc',
  '#8d6e63',
  '#29b6f6',
  '#d4e157',
  '#ec407a',
  '#78909c',
  '#ffa726',
  '#66bb6a',
  '#7e57c2',
];
export const RUN_COLORS = ['#546e7a', '#00897b', '#8e24aa', '#f4511e'];

const W = 300;
const BAR_H = 12;
const ROW = 28;
const HIST_H = 64;

function canvas(h: number): [HTMLCanvasElement, CanvasRenderingContext2D] {
  const c = document.createElement('canvas');
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.round(W * dpr);
  c.height = Math.round(h * dpr);
  c.style.width = `${W}px`;
  c.style.height = `${h}px`;
  const ctx = c.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  return [c, ctx];
}

/** A colour swatch and its name, kept on one line. */
function keyEntry(color: string, text: string): HTMLElement {
  const e = document.createElement('span');
  e.className = 'key';
  const sw = document.createElement('span');
  sw.className = 'swatch';
  sw.style.background = color;
  e.append(sw, document.createTextNode(` ${text}`));
  return e;
}

interface Bar {
  readonly label: string;
  readonly stages: readonly Stage[];
  /** Where delivery ends, ns from the start (NaN: not shown). */
  readonly delivered: number;
}

export interface LatencyPanel {
  readonly el: HTMLElement;
  /** Shows interrupt `seq` of every run (the first IRQ when absent). */
  show(seq: number): void;
}

export function latencyPanel(d: TimelineData, lat: Latency): LatencyPanel {
  const el = document.createElement('div');
  el.className = 'latency';
  const colorOf = (name: string): string => STAGE_COLORS[lat.names.indexOf(name) % STAGE_COLORS.length]!;
  const runLabel = (r: number): string => d.runs[r]!.label;

  const title = document.createElement('h2');
  const barsWrap = document.createElement('div');
  const legend = document.createElement('div');
  legend.className = 'stage-legend';
  for (const name of lat.names) legend.append(keyEntry(colorOf(name), name));
  const hist = document.createElement('h2');
  hist.textContent = 'Latency histograms (IRQs per bin)';
  const runKey = document.createElement('div');
  runKey.className = 'stage-legend';
  for (const r of lat.runs)
    runKey.append(keyEntry(RUN_COLORS[r.run % RUN_COLORS.length]!, `${runLabel(r.run)} (${r.irqs} IRQs)`));
  el.append(title, barsWrap, legend, hist, runKey);
  el.append(histogramCanvas(`delivery: device_assert → ${DELIVERED}`, lat.delivery));
  el.append(histogramCanvas('whole chain: device_assert → its last event', lat.total));

  const show = (seq: number): void => {
    const bars: Bar[] = [];
    for (const r of lat.runs) {
      const c = r.chainOfSeq.get(seq);
      if (c === undefined) continue;
      const stages = chainStages(d, c);
      let t = 0;
      let delivered = Number.NaN;
      for (const s of stages) {
        t += s.ns;
        if (s.name === DELIVERED && Number.isNaN(delivered)) delivered = t;
      }
      bars.push({ label: `${runLabel(r.run)}: IRQ seq ${seq}`, stages, delivered });
    }
    for (const r of lat.runs)
      if (r.irqs > 0)
        bars.push({ label: `${runLabel(r.run)}: mean of ${r.irqs}`, stages: r.mean, delivered: Number.NaN });
    title.textContent = `Latency per IRQ: stages of its causal chain (seq ${seq})`;
    barsWrap.replaceChildren(barsCanvas(bars, colorOf));
  };
  return { el, show };
}

function barsCanvas(bars: readonly Bar[], colorOf: (name: string) => string): HTMLCanvasElement {
  const [c, ctx] = canvas(Math.max(ROW, bars.length * ROW));
  let max = 1;
  for (const b of bars)
    max = Math.max(
      max,
      b.stages.reduce((a, s) => a + s.ns, 0),
    );
  const scale = (W - 70) / max;
  bars.forEach((b, k) => {
    const y = k * ROW;
    ctx.fillStyle = '#37474f';
    ctx.fillText(b.label, 0, y + 7);
    let x = 0;
    for (const s of b.stages) {
      const w = s.ns * scale;
      ctx.fillStyle = colorOf(s.name);
      ctx.fillRect(x, y + 14, Math.max(w, 0.5), BAR_H);
      x += w;
    }
    const total = b.stages.reduce((a, s) => a + s.ns, 0);
    ctx.fillStyle = '#263238';
    ctx.fillText(fmtNs(total), x + 4, y + 14 + BAR_H / 2);
    if (!Number.isNaN(b.delivered)) {
      // where the guest's handler starts: delivery ends here
      const dx = Math.round(b.delivered * scale) + 0.5;
      ctx.strokeStyle = '#b71c1c';
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(dx, y + 12);
      ctx.lineTo(dx, y + 16 + BAR_H);
      ctx.stroke();
    }
  });
  c.title = 'the red tick: the guest enters its handler (delivery ends)';
  return c;
}

/** Runs overlaid on shared bins; the axis shows the bins' range. */
function histogramCanvas(title: string, h: Histogram): HTMLElement {
  const wrap = document.createElement('div');
  wrap.className = 'histogram';
  const cap = document.createElement('div');
  cap.className = 'hist-title';
  cap.textContent = title;
  const [c, ctx] = canvas(HIST_H + 14);
  let peak = 1;
  for (const run of h.counts) for (const n of run) peak = Math.max(peak, n);
  const bw = W / HIST_BINS;
  const runs = h.counts.length;
  h.counts.forEach((bins, r) => {
    ctx.fillStyle = RUN_COLORS[r % RUN_COLORS.length]!;
    bins.forEach((n, b) => {
      if (n === 0) return;
      const bh = Math.max(1, (n / peak) * HIST_H);
      // side by side inside a bin, one slot per run
      ctx.fillRect(b * bw + (r * bw) / runs, HIST_H - bh, bw / runs - 0.5, bh);
    });
  });
  ctx.fillStyle = '#cfd8dc';
  ctx.fillRect(0, HIST_H, W, 1);
  ctx.fillStyle = '#37474f';
  ctx.textAlign = 'left';
  ctx.fillText(fmtNs(h.lo), 0, HIST_H + 8);
  ctx.textAlign = 'right';
  ctx.fillText(fmtNs(h.lo + h.width * HIST_BINS), W, HIST_H + 8);
  ctx.textAlign = 'center';
  ctx.fillText(`${fmtNs(h.width)} per bin, peak ${peak}`, W / 2, HIST_H + 8);
  wrap.append(cap, c);
  return wrap;
}
