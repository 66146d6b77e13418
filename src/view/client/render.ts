/// <reference lib="dom" />
/**
 * Canvas drawing. Only what is visible is touched: per lane, a binary search gives the items overlapping the view,
 * and items that land on pixels already painted in the same row are skipped, so a frame costs O(lanes × width)
 * rather than O(events).
 */
import { isPointStyle, STYLE_CHECK_MARKED, STYLE_VIOLATION, type TimelineData } from '../timelineData.js';
import { STYLE_COLORS } from './colors.js';
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

export function drawAxis(ctx: CanvasRenderingContext2D, d: TimelineData, v: View): void {
  const span = v.t1 - v.t0;
  const k = v.width / span;
  ctx.clearRect(0, 0, v.width, AXIS_H);
  ctx.fillStyle = '#f5f7fa';
  ctx.fillRect(0, 0, v.width, AXIS_H);
  ctx.strokeStyle = '#90a4ae';
  ctx.fillStyle = '#37474f';
  ctx.font = '11px ui-monospace, monospace';
  const step = niceStep(span, v.width);
  // ticks at round offsets from the first event
  for (let r = Math.ceil((v.t0 - d.startNs) / step) * step; d.startNs + r <= v.t1; r += step) {
    const x = Math.round((d.startNs + r - v.t0) * k) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, AXIS_H - 8);
    ctx.lineTo(x, AXIS_H);
    ctx.stroke();
    ctx.fillText(fmtNs(r), x + 3, AXIS_H - 11);
  }
}

/** Draws the lanes; returns how many items were painted. */
export function drawLanes(
  ctx: CanvasRenderingContext2D,
  d: TimelineData,
  idx: Index,
  layout: Layout,
  v: View,
  height: number,
): number {
  const k = v.width / (v.t1 - v.t0);
  ctx.clearRect(0, 0, v.width, height);
  ctx.font = '11px ui-monospace, monospace';
  ctx.textBaseline = 'middle';
  let drawn = 0;
  // run headers and lane separators
  d.runs.forEach((r, ri) => {
    ctx.fillStyle = '#eceff1';
    ctx.fillRect(0, layout.runY[ri]!, v.width, RUN_HEADER_H);
    ctx.fillStyle = '#263238';
    ctx.fillText(`${r.label} — ${r.source}`, 6, layout.runY[ri]! + RUN_HEADER_H / 2);
  });
  const rowEnd = new Float64Array(8);
  for (let l = 0; l < d.lanes.length; l++) {
    const y0 = layout.laneY[l]!;
    const h = layout.laneH[l]!;
    ctx.fillStyle = l % 2 === 0 ? '#ffffff' : '#fafbfc';
    ctx.fillRect(0, y0, v.width, h);
    ctx.fillStyle = '#e0e4e8';
    ctx.fillRect(0, y0 + h - 1, v.width, 1);
    const [lo, hi] = visibleRange(d.itemStart, idx.itemMaxEnd, d.laneFirst, l, v.t0, v.t1);
    const rows = d.lanes[l]!.rows;
    const [py, ph] = pointBand(d, layout, l);
    const sy = sliceTop(d, layout, l);
    rowEnd.fill(Number.NEGATIVE_INFINITY);
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
        const x = (s - v.t0) * k;
        if (point) {
          const px = Math.floor(x);
          const big = style >= STYLE_CHECK_MARKED;
          if (px === lastPointPx && style === lastPointStyle && !big) continue;
          lastPointPx = px;
          lastPointStyle = style;
          const w = Math.max(big ? 7 : 2, dur * k);
          ctx.fillStyle = STYLE_COLORS[style]!;
          ctx.fillRect(big ? px - 3 : px, py, w, ph);
          if (big) {
            ctx.strokeStyle = style === STYLE_VIOLATION ? '#7f0000' : '#d32f2f';
            ctx.lineWidth = 1.5;
            ctx.strokeRect(px - 3, py, w, ph);
          }
        } else {
          const row = Math.min(d.itemDepth[i]!, rows - 1);
          const x0 = Math.max(x, -1);
          const x1 = Math.min((s + dur - v.t0) * k, v.width + 1);
          if (x1 <= rowEnd[row]! && x1 - x0 < 1) continue;
          const px0 = Math.floor(x0);
          const pw = Math.max(1, Math.ceil(x1) - px0);
          rowEnd[row] = px0 + pw;
          const ry = sy + row * ROW_H;
          ctx.fillStyle = STYLE_COLORS[style]!;
          ctx.fillRect(px0, ry + 1, pw, ROW_H - 2);
          if (pw > 48) {
            ctx.fillStyle = '#1b262c';
            const name = d.names[d.itemName[i]!]!;
            ctx.save();
            ctx.beginPath();
            ctx.rect(px0, ry, pw, ROW_H);
            ctx.clip();
            ctx.fillText(name, Math.max(px0, 0) + 3, ry + ROW_H / 2);
            ctx.restore();
          }
        }
        if (i === v.selected) {
          ctx.strokeStyle = '#0d47a1';
          ctx.lineWidth = 2;
          ctx.strokeRect(Math.floor(x) - 2, y0 + 1, Math.max(4, dur * k + 4), h - 3);
        }
        drawn++;
      }
    }
  }
  drawFlows(ctx, d, idx, layout, v, k);
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
  }
  return drawn;
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
  labels: boolean,
): void {
  const a = idxFirst(d, c);
  const b = d.flowFirst[c + 1]!;
  for (let j = a; j + 1 < b; j++) {
    const [ax, ay] = itemPoint(d, layout, v, k, d.flowItems[j]!);
    const [bx, by] = itemPoint(d, layout, v, k, d.flowItems[j + 1]!);
    arrow(ctx, ax, ay, bx, by);
  }
  if (!labels) return;
  ctx.fillStyle = '#b71c1c';
  for (let j = a; j < b; j++) {
    const i = d.flowItems[j]!;
    const [x, y] = itemPoint(d, layout, v, k, i);
    ctx.fillText(`${j - a + 1} ${d.names[d.itemName[i]!]}`, x + 5, y - 9);
  }
}

function idxFirst(d: TimelineData, c: number): number {
  return d.flowFirst[c]!;
}

function drawFlows(
  ctx: CanvasRenderingContext2D,
  d: TimelineData,
  idx: Index,
  layout: Layout,
  v: View,
  k: number,
): void {
  const n = d.flowStart.length;
  const [lo, hi] = visibleRange(d.flowStart, idx.flowMaxEnd, [0, n], 0, v.t0, v.t1);
  if (hi - lo <= MAX_FLOWS_DRAWN) {
    ctx.strokeStyle = 'rgba(21, 101, 192, 0.55)';
    ctx.fillStyle = 'rgba(21, 101, 192, 0.75)';
    ctx.lineWidth = 1;
    for (let c = lo; c < hi; c++)
      if (d.flowEnd[c]! >= v.t0 && c !== v.selectedChain) drawChain(ctx, d, layout, v, k, c, false);
  }
  if (v.selectedChain >= 0) {
    ctx.strokeStyle = '#c62828';
    ctx.fillStyle = '#c62828';
    ctx.lineWidth = 2.5;
    drawChain(ctx, d, layout, v, k, v.selectedChain, true);
    ctx.lineWidth = 1;
  }
}
