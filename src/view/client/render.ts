/// <reference lib="dom" />
/**
 * Canvas drawing. Only what is visible is touched: per lane, a binary search gives the items overlapping the view;
 * a lane with more of them than a bar every few pixels is drawn as density buckets (density.ts), else item by item,
 * skipping items that land on pixels already painted in the same row, so a frame costs O(lanes × width) rather than
 * O(events). Every text label is placed through a Labeler (declutter.ts), so no two overlap.
 */
import { stepMark } from '../../check/stepMark.js';
import { isPointStyle, MAX_ROWS, STYLE_CHECK_MARKED, STYLE_VIOLATION, type TimelineData } from '../timelineData.js';
import { STYLE_COLORS } from './colors.js';
import type { Box, Labeler } from './declutter.js';
import { BUCKET_PX, countIn, coveredBefore, DENSE_SPACING_PX, type LaneDensity, stripSeries } from './density.js';
import { AXIS_H, type Layout, pointBand, ROW_H, RUN_HEADER_H, sliceTop } from './layout.js';
import { visibleRange } from './search.js';

export interface View {
  t0: number;
  t1: number;
  width: number;
  selected: number;
  selectedChain: number;
}

export interface Index {
  readonly itemMaxEnd: Float64Array;
  readonly flowMaxEnd: Float64Array;
  readonly flowFirst: readonly number[];
  /** The chain an item belongs to, or -1. */
  readonly itemChain: Int32Array;
  readonly density: readonly LaneDensity[];
}

const MAX_FLOWS_DRAWN = 300;

export function fmtNs(ns: number): string {
  const a = Math.abs(ns);
  if (a >= 1e6) return `${(ns / 1e6).toFixed(a >= 1e8 ? 0 : 3)} ms`;
  if (a >= 1e3) return `${(ns / 1e3).toFixed(a >= 1e5 ? 1 : 3)} µs`;
  return `${ns.toFixed(0)} ns`;
}

function niceStep(span: number, px: number): number {
  const raw = (span * 90) / Math.max(px, 1);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (p * m >= raw) return p * m;
  return p * 10;
}

/** The time axis; `zero` names time 0 (each run's first IRQ). */
export function drawAxis(ctx: CanvasRenderingContext2D, v: View, zero: string): void {
  const span = v.t1 - v.t0;
  const k = v.width / span;
  ctx.clearRect(0, 0, v.width, AXIS_H);
  ctx.fillStyle = '#f5f7fa';
  ctx.fillRect(0, 0, v.width, AXIS_H);
  ctx.strokeStyle = '#90a4ae';
  ctx.fillStyle = '#37474f';
  ctx.font = '11px ui-monospace, monospace';
  const step = niceStep(span, v.width);
  // times are relative to each run's first IRQ: ticks at round offsets from it
  for (let r = Math.ceil(v.t0 / step) * step; r <= v.t1; r += step) {
    const x = Math.round((r - v.t0) * k) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, AXIS_H - 8);
    ctx.lineTo(x, AXIS_H);
    ctx.stroke();
    ctx.fillText(r === 0 ? zero : fmtNs(r), x + 3, AXIS_H - 11);
  }
}

/** What a frame painted (the browser test reads it through the page's hook). */
export interface FrameStats {
  /** Items painted one by one. */
  bars: number;
  /** Lanes painted as density, and their buckets. */
  densityLanes: number;
  buckets: number;
  /** Per lane: 1 when it was drawn as density. */
  dense: Uint8Array;
}

/** Point-event density bars: lighter than single chain events, which stay near-black. */
const DENSITY_COLOR = '#78909c';
/** Measured text widths, in the one font the lanes use (names repeat, so a frame measures few). */
const widths = new Map<string, number>();
function textW(ctx: CanvasRenderingContext2D, s: string): number {
  let w = widths.get(s);
  if (w === undefined) {
    w = Math.ceil(ctx.measureText(s).width);
    widths.set(s, w);
  }
  return w;
}

/** Draws the lanes; every text label goes through `labels`, so none overlaps another. */
export function drawLanes(
  ctx: CanvasRenderingContext2D,
  d: TimelineData,
  idx: Index,
  layout: Layout,
  v: View,
  height: number,
  labels: Labeler,
): FrameStats {
  const k = v.width / (v.t1 - v.t0);
  ctx.clearRect(0, 0, v.width, height);
  ctx.font = '11px ui-monospace, monospace';
  ctx.textBaseline = 'middle';
  labels.clear();
  const stats: FrameStats = { bars: 0, densityLanes: 0, buckets: 0, dense: new Uint8Array(d.lanes.length) };
  d.runs.forEach((r, ri) => {
    const y = layout.runY[ri]!;
    ctx.fillStyle = '#eceff1';
    ctx.fillRect(0, y, v.width, RUN_HEADER_H);
    const text = `${r.label} — ${r.source} — time 0 = its first ${r.originIsIrq ? 'IRQ' : 'event'} (trace time ${fmtNs(r.originNs)})`;
    if (labels.place([[4, y + 4, textW(ctx, text) + 4, RUN_HEADER_H - 8]], text) >= 0) {
      ctx.fillStyle = '#263238';
      ctx.fillText(text, 6, y + RUN_HEADER_H / 2);
    }
  });
  for (let l = 0; l < d.lanes.length; l++) {
    const y0 = layout.laneY[l]!;
    const h = layout.laneH[l]!;
    ctx.fillStyle = l % 2 === 0 ? '#ffffff' : '#fafbfc';
    ctx.fillRect(0, y0, v.width, h);
    ctx.fillStyle = '#e0e4e8';
    ctx.fillRect(0, y0 + h - 1, v.width, 1);
    const [lo, hi] = visibleRange(d.itemStart, idx.itemMaxEnd, d.laneFirst, l, v.t0, v.t1);
    if (hi - lo > v.width / DENSE_SPACING_PX) {
      stats.buckets += drawDensity(ctx, d, idx.density[l]!, layout, v, l);
      stats.dense[l] = 1;
      stats.densityLanes++;
      for (const i of idx.density[l]!.always)
        if (d.itemStart[i]! >= v.t0 && d.itemStart[i]! <= v.t1) stats.bars += drawPoint(ctx, d, layout, v, k, i);
    } else {
      stats.dense[l] = 0;
      stats.bars += drawEvents(ctx, d, layout, v, k, l, lo, hi, labels);
    }
  }
  drawFlows(ctx, d, idx, layout, v, k, labels);
  drawStepLabels(ctx, d, layout, v, k, labels);
  if (v.selected >= 0) {
    const i = v.selected;
    const l = d.itemLane[i]!;
    ctx.strokeStyle = '#0d47a1';
    ctx.lineWidth = 2;
    ctx.strokeRect(
      Math.floor((d.itemStart[i]! - v.t0) * k) - 2,
      layout.laneY[l]! + 1,
      Math.max(4, d.itemDur[i]! * k + 4),
      layout.laneH[l]! - 3,
    );
  }
  // violations: a red rule across the whole timeline
  for (const viol of d.violations) {
    const x = Math.round((d.itemStart[viol.item]! - v.t0) * k) + 0.5;
    if (x < 0 || x > v.width) continue;
    ctx.strokeStyle = '#d50000';
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(x, 0);
    ctx.lineTo(x, height);
    ctx.stroke();
    ctx.setLineDash([]);
    const text = `✗ ${viol.invariant}`;
    const w = textW(ctx, text) + 2;
    const y = layout.laneY[d.runs[viol.run]!.firstLane]! + 2;
    placeText(ctx, labels, v, text, [
      [x - 4 - w, y],
      [x + 4, y],
    ]);
  }
  return stats;
}

/** One point event (a tick across the lane's strip; checker steps that matter and violations as boxes). */
function drawPoint(
  ctx: CanvasRenderingContext2D,
  d: TimelineData,
  layout: Layout,
  v: View,
  k: number,
  i: number,
): number {
  const style = d.itemStyle[i]!;
  const [py, ph] = pointBand(d, layout, d.itemLane[i]!);
  const px = Math.floor((d.itemStart[i]! - v.t0) * k);
  const big = style >= STYLE_CHECK_MARKED;
  const w = Math.max(big ? 7 : 2, d.itemDur[i]! * k);
  ctx.fillStyle = STYLE_COLORS[style]!;
  ctx.fillRect(big ? px - 3 : px, py, w, ph);
  if (big) {
    ctx.strokeStyle = style === STYLE_VIOLATION ? '#7f0000' : '#d32f2f';
    ctx.lineWidth = 1.5;
    ctx.strokeRect(px - 3, py, w, ph);
  }
  return 1;
}

/** Zoomed in: each event as a bar (slices) or tick (point events); items on pixels already painted are skipped. */
function drawEvents(
  ctx: CanvasRenderingContext2D,
  d: TimelineData,
  layout: Layout,
  v: View,
  k: number,
  l: number,
  lo: number,
  hi: number,
  labels: Labeler,
): number {
  const rows = d.lanes[l]!.rows;
  const sy = sliceTop(d, layout, l);
  const rowEnd = new Float64Array(MAX_ROWS).fill(Number.NEGATIVE_INFINITY);
  let drawn = 0;
  let lastPointPx = Number.NEGATIVE_INFINITY;
  let lastPointStyle = -1;
  // slices first, then point events on top
  for (let pass = 0; pass < 2; pass++) {
    for (let i = lo; i < hi; i++) {
      const s = d.itemStart[i]!;
      const dur = d.itemDur[i]!;
      if (s + dur < v.t0) continue;
      const style = d.itemStyle[i]!;
      const point = isPointStyle(style);
      if (point !== (pass === 1)) continue;
      if (point) {
        const px = Math.floor((s - v.t0) * k);
        if (px === lastPointPx && style === lastPointStyle && style < STYLE_CHECK_MARKED) continue;
        lastPointPx = px;
        lastPointStyle = style;
        drawn += drawPoint(ctx, d, layout, v, k, i);
        continue;
      }
      const row = Math.min(d.itemDepth[i]!, rows - 1);
      const x0 = Math.max((s - v.t0) * k, -1);
      const x1 = Math.min((s + dur - v.t0) * k, v.width + 1);
      if (x1 <= rowEnd[row]! && x1 - x0 < 1) continue;
      const px0 = Math.floor(x0);
      const pw = Math.max(1, Math.ceil(x1) - px0);
      rowEnd[row] = px0 + pw;
      const ry = sy + row * ROW_H;
      ctx.fillStyle = STYLE_COLORS[style]!;
      ctx.fillRect(px0, ry + 1, pw, ROW_H - 2);
      drawn++;
      // the name, inside its slice, cut to what fits
      const left = Math.max(px0, 0);
      const room = Math.min(px0 + pw, v.width) - left - 6;
      if (room < 12) continue;
      const name = fitText(ctx, d.names[d.itemName[i]!]!, room);
      if (name === '') continue;
      if (labels.place([[left + 2, ry + 2, textW(ctx, name) + 2, ROW_H - 4]], name) < 0) continue;
      ctx.fillStyle = '#1b262c';
      ctx.fillText(name, left + 3, ry + ROW_H / 2);
    }
  }
  return drawn;
}

/** The text, or its head and `…`, in at most px pixels; '' when not even three characters fit. */
function fitText(ctx: CanvasRenderingContext2D, s: string, px: number): string {
  if (textW(ctx, s) <= px) return s;
  for (let n = Math.min(s.length - 1, Math.floor(px / 5)); n >= 3; n--) {
    const t = `${s.slice(0, n)}…`;
    if (textW(ctx, t) <= px) return t;
  }
  return '';
}

/** Zoomed out: per bucket, the count of point events and the time share of each slice style; returns the buckets. */
function drawDensity(
  ctx: CanvasRenderingContext2D,
  d: TimelineData,
  ld: LaneDensity,
  layout: Layout,
  v: View,
  l: number,
): number {
  const nb = Math.ceil(v.width / BUCKET_PX);
  const bt = ((v.t1 - v.t0) * BUCKET_PX) / v.width; // ns per bucket
  const lane = d.lanes[l]!;
  let drawn = 0;
  // point events: a bar chart of events per bucket, scaled to the busiest visible bucket
  const [py, ph] = pointBand(d, layout, l);
  let peak = 0;
  const counts = new Uint32Array(nb);
  const series = stripSeries(ld);
  for (let b = 0; b < nb; b++) {
    counts[b] = countIn(series, v.t0 + b * bt, v.t0 + (b + 1) * bt);
    if (counts[b]! > peak) peak = counts[b]!;
  }
  if (peak > 0) {
    ctx.fillStyle = DENSITY_COLOR;
    ctx.beginPath();
    for (let b = 0; b < nb; b++) {
      if (counts[b] === 0) continue;
      const bh = Math.max(1, Math.round((ph * counts[b]!) / peak));
      ctx.rect(b * BUCKET_PX, py + ph - bh, BUCKET_PX - 0.5, bh);
      drawn++;
    }
    ctx.fill();
  }
  // slices: the share of each bucket's time in each style, stacked from the bottom of the lane's rows
  if (lane.slices && ld.styles.length > 0) {
    const top = sliceTop(d, layout, l) + 1;
    const area = lane.rows * ROW_H - 2;
    const filled = new Float64Array(nb);
    ld.styles.forEach((style, s) => {
      ctx.fillStyle = STYLE_COLORS[style]!;
      ctx.beginPath();
      let prev = coveredBefore(ld, s, v.t0);
      for (let b = 0; b < nb; b++) {
        const next = coveredBefore(ld, s, v.t0 + (b + 1) * bt);
        const share = (next - prev) / bt;
        prev = next;
        if (share <= 0) continue;
        const bh = Math.max(1, share * area);
        ctx.rect(b * BUCKET_PX, top + area - filled[b]! - bh, BUCKET_PX - 0.5, bh);
        filled[b]! += bh;
        drawn++;
      }
      ctx.fill();
    });
  }
  return drawn;
}

/** The checker's steps that matter, labelled `step N*` as the CLI prints them (`# step N*`). */
function drawStepLabels(
  ctx: CanvasRenderingContext2D,
  d: TimelineData,
  layout: Layout,
  v: View,
  k: number,
  labels: Labeler,
): void {
  for (const s of d.checkSteps) {
    if (!s.marked) continue;
    const x = (d.itemStart[s.item]! - v.t0) * k;
    if (x < 0 || x > v.width) continue;
    const text = stepMark(s.index, true);
    const [py, ph] = pointBand(d, layout, d.itemLane[s.item]!);
    const w = textW(ctx, text) + 2;
    const y = py + ph / 2;
    placeText(ctx, labels, v, text, [
      [x + 5, y - 7],
      [x - 5 - w, y - 7],
      [x + 5, y + 6],
      [x - 5 - w, y + 6],
    ]);
  }
}

/** A red label at the first of the candidate top-left corners where it fits the canvas and meets no other label. */
function placeText(
  ctx: CanvasRenderingContext2D,
  labels: Labeler,
  v: View,
  text: string,
  corners: readonly (readonly [number, number])[],
): void {
  const w = textW(ctx, text) + 2;
  const boxes = corners.filter(([x]) => x >= 0 && x + w <= v.width).map(([x, y]): Box => [x, y, w, 13]);
  const at = labels.place(boxes, text);
  if (at < 0) return;
  const [x, y] = boxes[at]!;
  ctx.fillStyle = 'rgba(255,255,255,0.8)';
  ctx.fillRect(x, y, w, 13);
  ctx.fillStyle = '#b71c1c';
  ctx.fillText(text, x + 1, y + 6.5);
}

/** Where an arrow of a causal chain meets item i. */
export function itemPoint(d: TimelineData, layout: Layout, v: View, k: number, i: number): [number, number] {
  const l = d.itemLane[i]!;
  const x = (d.itemStart[i]! - v.t0) * k;
  if (isPointStyle(d.itemStyle[i]!)) {
    const [py, ph] = pointBand(d, layout, l);
    return [x + 1, py + ph / 2];
  }
  const row = Math.min(d.itemDepth[i]!, d.lanes[l]!.rows - 1);
  return [x + Math.min(2, d.itemDur[i]! * k), sliceTop(d, layout, l) + row * ROW_H + ROW_H / 2];
}

function arrow(ctx: CanvasRenderingContext2D, ax: number, ay: number, bx: number, by: number): void {
  ctx.beginPath();
  ctx.moveTo(ax, ay);
  const mx = (ax + bx) / 2;
  ctx.bezierCurveTo(mx, ay, mx, by, bx, by);
  ctx.stroke();
  const ang = Math.atan2(by - ay, bx - ax);
  const a = bx === ax ? (by > ay ? Math.PI / 2 : -Math.PI / 2) : ang;
  ctx.beginPath();
  ctx.moveTo(bx, by);
  ctx.lineTo(bx - 7 * Math.cos(a - 0.4), by - 7 * Math.sin(a - 0.4));
  ctx.lineTo(bx - 7 * Math.cos(a + 0.4), by - 7 * Math.sin(a + 0.4));
  ctx.closePath();
  ctx.fill();
}

function drawChain(
  ctx: CanvasRenderingContext2D,
  d: TimelineData,
  layout: Layout,
  v: View,
  k: number,
  c: number,
  labels: Labeler | null,
): void {
  const a = d.flowFirst[c]!;
  const b = d.flowFirst[c + 1]!;
  for (let j = a; j + 1 < b; j++) {
    const [ax, ay] = itemPoint(d, layout, v, k, d.flowItems[j]!);
    const [bx, by] = itemPoint(d, layout, v, k, d.flowItems[j + 1]!);
    arrow(ctx, ax, ay, bx, by);
  }
  if (labels === null) return;
  for (let j = a; j < b; j++) {
    const i = d.flowItems[j]!;
    const [x, y] = itemPoint(d, layout, v, k, i);
    if (x < 0 || x > v.width) continue;
    const text = `${j - a + 1} ${d.names[d.itemName[i]!]}`;
    const w = textW(ctx, text) + 2;
    // right above, right below, left above, left below, then one line further out
    placeText(ctx, labels, v, text, [
      [x + 4, y - 15],
      [x + 4, y + 3],
      [x - 4 - w, y - 15],
      [x - 4 - w, y + 3],
      [x + 4, y - 28],
      [x + 4, y + 16],
    ]);
  }
}

function drawFlows(
  ctx: CanvasRenderingContext2D,
  d: TimelineData,
  idx: Index,
  layout: Layout,
  v: View,
  k: number,
  labels: Labeler,
): void {
  const n = d.flowStart.length;
  const [lo, hi] = visibleRange(d.flowStart, idx.flowMaxEnd, [0, n], 0, v.t0, v.t1);
  if (hi - lo <= MAX_FLOWS_DRAWN) {
    ctx.strokeStyle = 'rgba(21, 101, 192, 0.55)';
    ctx.fillStyle = 'rgba(21, 101, 192, 0.75)';
    ctx.lineWidth = 1;
    for (let c = lo; c < hi; c++)
      if (d.flowEnd[c]! >= v.t0 && c !== v.selectedChain) drawChain(ctx, d, layout, v, k, c, null);
  }
  if (v.selectedChain >= 0) {
    ctx.strokeStyle = '#c62828';
    ctx.fillStyle = '#c62828';
    ctx.lineWidth = 2.5;
    drawChain(ctx, d, layout, v, k, v.selectedChain, labels);
    ctx.lineWidth = 1;
  }
}
