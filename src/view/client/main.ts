/// <reference lib="dom" />
/**
 * The page's browser code (bundled by esbuild into one IIFE and inlined by page.ts): reads the embedded timeline,
 * lays out lanes, draws on canvas, fills the latency panel, and handles hover, click, zoom and pan.
 * `window.__irqfwdView` exposes what the browser test checks (hook.ts).
 */
import { stepMark } from '../../check/stepMark.js';
import { latencyOf } from '../latency.js';
import { isPointStyle, type TimelineData } from '../timelineData.js';
import { LEGEND, STYLE_COLORS } from './colors.js';
import { Labeler } from './declutter.js';
import { BUCKET_PX, bucketSummary, densityIndex } from './density.js';
import type { ViewHook } from './hook.js';
import { type LatencyPanel, latencyPanel } from './latencyPanel.js';
import { AXIS_H, laneAt, layoutLanes, pointBand, ROW_H, sliceTop } from './layout.js';
import { drawAxis, drawLanes, fmtNs, type Index, itemPoint, type View } from './render.js';
import { runningMaxEnd, visibleRange } from './search.js';

declare global {
  interface Window {
    __irqfwdView?: ViewHook;
  }
}

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  if (cls !== undefined) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

function start(): void {
  const d = JSON.parse(document.getElementById('irqfwd-data')!.textContent!) as TimelineData;
  const n = d.itemStart.length;
  const layout = layoutLanes(d);
  const nf = d.flowStart.length;
  const flowDur = new Float64Array(nf);
  for (let c = 0; c < nf; c++) flowDur[c] = d.flowEnd[c]! - d.flowStart[c]!;
  const itemChain = new Int32Array(n).fill(-1);
  for (let c = 0; c < nf; c++)
    for (let j = d.flowFirst[c]!; j < d.flowFirst[c + 1]!; j++) itemChain[d.flowItems[j]!] = c;
  const idx: Index = {
    itemMaxEnd: runningMaxEnd(d.itemStart, d.itemDur, d.laneFirst, d.lanes.length),
    flowMaxEnd: runningMaxEnd(d.flowStart, flowDur, [0, nf], 1),
    flowFirst: d.flowFirst,
    itemChain,
    density: densityIndex(d),
  };
  const labeler = new Labeler();

  // ---- DOM -----------------------------------------------------------------------------------------------------
  const header = document.getElementById('header')!;
  header.append(el('h1', '', d.title));
  const controls = el('span', 'controls');
  const btn = (label: string, title: string, f: () => void): void => {
    const b = el('button', '', label);
    b.title = title;
    b.addEventListener('click', f);
    controls.append(b);
  };
  header.append(controls);
  const legend = el('span', 'legend');
  for (const [style, label] of LEGEND) {
    const sw = el('span', 'swatch');
    sw.style.background = STYLE_COLORS[style]!;
    legend.append(sw, el('span', 'legend-label', label));
  }
  header.append(legend);
  header.append(el('span', 'hint', 'wheel/W S: zoom · drag/A D/shift+wheel: pan · click: fields + causal chain'));
  const banner = document.getElementById('banner')!;
  for (const v of d.violations) {
    const msg = v.message.startsWith(`${v.invariant}:`) ? v.message : `${v.invariant}: ${v.message}`;
    const b = el('div', 'violation', `✗ ${d.runs[v.run]?.label ?? ''}: ${msg}`);
    b.addEventListener('click', () => focusItem(v.item));
    banner.append(b);
  }
  const labels = document.getElementById('labels')!;
  labels.style.height = `${layout.height}px`;
  d.runs.forEach((r, ri) => {
    const e = el('div', 'run-label', r.label);
    e.style.top = `${layout.runY[ri]!}px`;
    e.dataset.run = String(ri);
    labels.append(e);
  });
  d.lanes.forEach((lane, l) => {
    const e = el('div', `lane-label kind-${lane.kind}`, lane.label);
    e.style.top = `${layout.laneY[l]!}px`;
    e.style.height = `${layout.laneH[l]!}px`;
    e.dataset.lane = String(l);
    e.dataset.kind = lane.kind;
    e.title = lane.label;
    labels.append(e);
  });
  const axis = document.getElementById('axis') as HTMLCanvasElement;
  const canvas = document.getElementById('lanes') as HTMLCanvasElement;
  const plot = document.getElementById('plot')!;
  const axisInfo = document.getElementById('axispad')!;
  const tip = document.getElementById('tip')!;
  const details = document.getElementById('details')!;
  const steps = document.getElementById('steps')!;
  let panel: LatencyPanel | null = null; // built after the first frame
  const actx = axis.getContext('2d')!;
  const ctx = canvas.getContext('2d')!;

  const view: View = { t0: d.startNs, t1: d.endNs, width: 800, selected: -1, selectedChain: -1 };
  let frames = 0;
  const fromIrq = d.runs.every((r) => r.originIsIrq);
  const zero = fromIrq ? '0 (1st IRQ)' : '0';
  let dense: Uint8Array = new Uint8Array(d.lanes.length);
  let dirty = false;
  const redraw = (): void => {
    if (dirty) return;
    dirty = true;
    requestAnimationFrame(paint);
  };
  const paint = (): void => {
    dirty = false;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, plot.clientWidth);
    if (view.width !== w || canvas.height !== Math.round(layout.height * dpr)) {
      view.width = w;
      for (const [c, h] of [
        [axis, AXIS_H],
        [canvas, layout.height],
      ] as [HTMLCanvasElement, number][]) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
        c.style.width = `${w}px`;
        c.style.height = `${h}px`;
      }
    }
    actx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawAxis(actx, view, zero);
    axisInfo.textContent = `view: ${fmtNs(view.t1 - view.t0)} wide${fromIrq ? ", from each run's first IRQ" : ''}`;
    const stats = drawLanes(ctx, d, idx, layout, view, layout.height, labeler);
    dense = stats.dense;
    if (stats.densityLanes > 0)
      axisInfo.textContent += ` · density: one bar = ${fmtNs(((view.t1 - view.t0) * BUCKET_PX) / view.width)}`;
    frames++;
    hook.drawn = stats.bars;
    hook.densityLanes = stats.densityLanes;
    hook.buckets = stats.buckets;
    hook.labelBoxes = labeler.boxes.map((b) => [...b]);
    hook.labelTexts = [...labeler.texts];
    hook.frames = frames;
  };
  const setView = (t0: number, t1: number): void => {
    const full = d.endNs - d.startNs;
    let span = Math.min(Math.max(t1 - t0, 10), full * 1.2);
    if (!(span > 0)) span = full;
    let a = t0;
    const lo = d.startNs - full * 0.1;
    const hi = d.endNs + full * 0.1;
    if (a < lo) a = lo;
    if (a + span > hi) a = hi - span;
    view.t0 = a;
    view.t1 = a + span;
    redraw();
  };
  const zoom = (factor: number, atX: number): void => {
    const t = view.t0 + (atX / view.width) * (view.t1 - view.t0);
    setView(t - (t - view.t0) * factor, t + (view.t1 - t) * factor);
  };
  const pan = (px: number): void => {
    const dt = (px / view.width) * (view.t1 - view.t0);
    setView(view.t0 + dt, view.t1 + dt);
  };
  const showAll = (): void => {
    const pad = (d.endNs - d.startNs) * 0.02; // the first and last events off the very edges
    setView(d.startNs - pad, d.endNs + pad);
  };
  btn('fit', 'show the whole run', showAll);
  btn('+', 'zoom in', () => zoom(0.5, view.width / 2));
  btn('−', 'zoom out', () => zoom(2, view.width / 2));
  if (nf > 0) btn('first IRQ', 'zoom to the first causal chain and select it', () => focusChain(0));

  // ---- hit testing ------------------------------------------------------------------------------------------------
  const itemAt = (x: number, y: number): number => {
    const l = laneAt(layout, y);
    if (l < 0) return -1;
    const k = view.width / (view.t1 - view.t0);
    const t = view.t0 + x / k;
    const tol = 4 / k;
    const [lo, hi] = visibleRange(d.itemStart, idx.itemMaxEnd, d.laneFirst, l, t - tol, t + tol);
    const [py, ph] = pointBand(d, layout, l);
    const inBand = y >= py - 2 && y <= py + ph + 2;
    const row = Math.min(Math.floor((y - sliceTop(d, layout, l)) / ROW_H), d.lanes[l]!.rows - 1);
    let best = -1;
    let bestScore = Number.POSITIVE_INFINITY;
    for (let i = lo; i < hi; i++) {
      const s = d.itemStart[i]!;
      const e = s + d.itemDur[i]!;
      if (e < t - tol) continue;
      const style = d.itemStyle[i]!;
      let score: number;
      if (isPointStyle(style)) {
        if (!inBand) continue;
        score = Math.abs(s - t) * k; // pixels away
      } else {
        if (Math.min(d.itemDepth[i]!, d.lanes[l]!.rows - 1) !== row || s > t || e < t) continue;
        score = 5 + 1 / (1 + d.itemDur[i]!); // the shortest containing slice
      }
      if (score < bestScore) {
        bestScore = score;
        best = i;
      }
    }
    return best;
  };
  const describe = (i: number): string => {
    const lane = d.lanes[d.itemLane[i]!]!;
    const run = d.runs[lane.run]!;
    const head = [
      d.names[d.itemName[i]!]!,
      `${run.label} · ${lane.label}`,
      `at ${fmtNs(d.itemStart[i]!)} from the run's first ${run.originIsIrq ? 'IRQ' : 'event'}${d.itemDur[i]! > 0 ? ` for ${fmtNs(d.itemDur[i]!)}` : ''}`,
      `(trace time ${fmtNs(d.itemStart[i]! + run.originNs)})`,
    ];
    return `${head.join('\n')}\n${d.itemArgs[i]!}`;
  };

  const showDetails = (i: number): void => {
    details.textContent = '';
    if (i < 0) return;
    details.append(el('h2', '', 'Selected event'), el('pre', 'fields', describe(i)));
    const c = idx.itemChain[i]!;
    if (c < 0) return;
    details.append(el('h2', '', `Causal chain (seq ${d.itemSeq[i] || '?'})`));
    const ol = el('ol', 'chain');
    const a = d.flowFirst[c]!;
    const t0 = d.itemStart[d.flowItems[a]!]!;
    for (let j = a; j < d.flowFirst[c + 1]!; j++) {
      const it = d.flowItems[j]!;
      const li = el(
        'li',
        it === i ? 'current' : '',
        `${d.names[d.itemName[it]!]}  +${fmtNs(d.itemStart[it]! - t0)}  (${d.lanes[d.itemLane[it]!]!.label})`,
      );
      li.addEventListener('click', () => select(it));
      ol.append(li);
    }
    details.append(ol);
  };
  const select = (i: number): void => {
    view.selected = i;
    view.selectedChain = i >= 0 ? idx.itemChain[i]! : -1;
    if (view.selectedChain >= 0) panel?.show(d.itemSeq[d.flowItems[d.flowFirst[view.selectedChain]!]!]!);
    showDetails(i);
    redraw();
  };
  const focusItem = (i: number): void => {
    const s = d.itemStart[i]!;
    const span = Math.max(d.itemDur[i]! * 3, Math.min(view.t1 - view.t0, 20_000));
    setView(s - span / 2, s + span / 2);
    select(i);
  };
  const focusChain = (c: number): void => {
    const a = d.flowStart[c]!;
    const span = Math.max(d.flowEnd[c]! - a, 100);
    setView(a - span * 0.3, a + span * 1.3);
    select(d.flowItems[d.flowFirst[c]!]!);
  };

  // ---- checker counterexample: the steps that matter ---------------------------------------------------------------
  const marked = d.checkSteps.filter((s) => s.marked);
  if (d.checkSteps.length > 0) {
    steps.hidden = false;
    steps.append(el('h2', '', `Schedule: ${marked.length} of ${d.checkSteps.length} steps matter`));
    const only = el('label', 'only');
    const cb = el('input');
    cb.type = 'checkbox';
    cb.checked = true;
    only.append(cb, document.createTextNode(' only the steps that matter'));
    steps.append(only);
    const ol = el('ol', 'step-list');
    for (const s of d.checkSteps) {
      const li = el('li', s.marked ? 'marked' : 'unmarked', `${stepMark(s.index, s.marked)} ${s.what}`);
      li.dataset.marked = String(s.marked);
      li.addEventListener('click', () => focusItem(s.item));
      ol.append(li);
    }
    const apply = (): void => {
      ol.classList.toggle('only-marked', cb.checked);
    };
    cb.addEventListener('change', apply);
    apply();
    steps.append(ol);
  }

  // ---- input ---------------------------------------------------------------------------------------------------------
  const local = (ev: MouseEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  };
  let drag: { x: number; moved: boolean } | null = null;
  canvas.addEventListener('mousedown', (ev) => {
    drag = { x: ev.clientX, moved: false };
  });
  window.addEventListener('mouseup', (ev) => {
    if (drag !== null && !drag.moved && ev.target === canvas) {
      const [x, y] = local(ev);
      select(itemAt(x, y));
    }
    drag = null;
  });
  canvas.addEventListener('mousemove', (ev) => {
    if (drag !== null && Math.abs(ev.clientX - drag.x) > 2) {
      pan(drag.x - ev.clientX);
      drag.x = ev.clientX;
      drag.moved = true;
      tip.hidden = true;
      return;
    }
    const [x, y] = local(ev);
    const l = laneAt(layout, y);
    if (l >= 0 && dense[l] === 1) {
      // a density lane: what its bucket under the pointer holds
      const b = Math.floor(x / BUCKET_PX);
      const bt = ((view.t1 - view.t0) * BUCKET_PX) / view.width;
      const t0 = view.t0 + b * bt;
      const styleName = (st: number): string => LEGEND.find(([s]) => s === st)?.[1] ?? 'other slices';
      showTip(
        ev,
        `${d.lanes[l]!.label}\n${fmtNs(t0)} … ${fmtNs(t0 + bt)}\n${bucketSummary(idx.density[l]!, t0, t0 + bt, styleName)}`,
        -1,
      );
      return;
    }
    const i = itemAt(x, y);
    if (i < 0) {
      tip.hidden = true;
      return;
    }
    showTip(ev, describe(i), i);
  });
  const showTip = (ev: MouseEvent, text: string, i: number): void => {
    tip.textContent = text;
    tip.dataset.item = String(i);
    tip.hidden = false;
    const tx = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const ty = Math.min(ev.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = `${Math.max(0, tx)}px`;
    tip.style.top = `${Math.max(0, ty)}px`;
  };
  canvas.addEventListener('mouseleave', () => {
    tip.hidden = true;
  });
  canvas.addEventListener(
    'wheel',
    (ev) => {
      ev.preventDefault();
      const [x] = local(ev);
      if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) pan(ev.shiftKey ? ev.deltaY : ev.deltaX);
      else zoom(Math.exp(ev.deltaY * 0.0015), x);
    },
    { passive: false },
  );
  window.addEventListener('keydown', (ev) => {
    const key = ev.key.toLowerCase();
    if (key === 'w') zoom(0.8, view.width / 2);
    else if (key === 's') zoom(1.25, view.width / 2);
    else if (key === 'a') pan(-view.width * 0.2);
    else if (key === 'd') pan(view.width * 0.2);
    else if (key === 'escape') select(-1);
  });
  window.addEventListener('resize', redraw);

  const hook: ViewHook = {
    ready: false,
    lanes: d.lanes.map((l) => l.label),
    laneKinds: d.lanes.map((l) => l.kind),
    items: n,
    chains: nf,
    drawn: 0,
    densityLanes: 0,
    buckets: 0,
    labelBoxes: [],
    labelTexts: [],
    markedStepIndices: marked.map((s) => s.index),
    latencyReady: false,
    irqs: [],
    histogram: { delivery: [], total: [] },
    frames: 0,
    setView: (t0, t1) => {
      setView(t0, t1);
      paint();
    },
    showAll: () => {
      showAll();
      paint();
    },
    findItem: (name, nth = 0) => {
      let seen = 0;
      for (let i = 0; i < n; i++) if (d.names[d.itemName[i]!] === name && seen++ === nth) return i;
      return -1;
    },
    itemScreenPos: (i) => {
      if (i < 0 || i >= n) return null;
      const r = canvas.getBoundingClientRect();
      const [x, y] = itemPoint(d, layout, view, view.width / (view.t1 - view.t0), i);
      return { x: r.left + x, y: r.top + y };
    },
  };
  window.__irqfwdView = hook;
  // a counterexample opens on the steps that matter
  if (marked.length > 0) {
    let a = Number.POSITIVE_INFINITY;
    let b = Number.NEGATIVE_INFINITY;
    for (const s of marked) {
      a = Math.min(a, d.itemStart[s.item]!);
      b = Math.max(b, d.itemStart[s.item]!);
    }
    const pad = Math.max((b - a) * 0.15, (d.endNs - d.startNs) * 0.1, 200);
    setView(a - pad, b + pad);
  }
  paint();
  hook.ready = true;
  // the latency panel once the timeline is on screen: a pass over every chain the first frame need not wait for
  setTimeout(() => {
    const lat = latencyOf(d);
    hook.irqs = lat.runs.map((r) => r.irqs);
    hook.histogram = {
      delivery: lat.delivery.counts.map((c) => [...c]),
      total: lat.total.counts.map((c) => [...c]),
    };
    if (nf > 0) {
      panel = latencyPanel(d, lat);
      document.getElementById('latency')!.append(panel.el);
      panel.show(d.itemSeq[d.flowItems[view.selectedChain >= 0 ? d.flowFirst[view.selectedChain]! : 0]!]!);
    }
    hook.latencyReady = true;
  }, 0);
}

start();
