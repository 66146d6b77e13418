/** Vertical layout of the timeline: a header row per run, then its lanes; rows inside a lane for nested slices. */
import type { TimelineData } from '../timelineData.js';

export const RUN_HEADER_H = 24;
export const ROW_H = 16;
export const LANE_PAD = 4;
export const AXIS_H = 28;
/** Height of the strip of point events above a lane's slices. */
export const STRIP_H = 9;

export interface Layout {
  /** Top of each lane, from the top of the lanes canvas. */
  readonly laneY: Float64Array;
  readonly laneH: Float64Array;
  readonly runY: Float64Array;
  readonly height: number;
}

export function layoutLanes(d: TimelineData): Layout {
  const laneY = new Float64Array(d.lanes.length);
  const laneH = new Float64Array(d.lanes.length);
  const runY = new Float64Array(d.runs.length);
  let y = 0;
  d.runs.forEach((r, ri) => {
    runY[ri] = y;
    y += RUN_HEADER_H;
    for (let l = r.firstLane; l < r.endLane; l++) {
      laneY[l] = y;
      const lane = d.lanes[l]!;
      laneH[l] = LANE_PAD * 2 + (lane.slices ? STRIP_H + ROW_H * lane.rows : ROW_H);
      y += laneH[l]!;
    }
  });
  return { laneY, laneH, runY, height: Math.max(y, 40) };
}

/** The lane at canvas height y, or -1. */
export function laneAt(layout: Layout, y: number): number {
  for (let l = 0; l < layout.laneY.length; l++)
    if (y >= layout.laneY[l]! && y < layout.laneY[l]! + layout.laneH[l]!) return l;
  return -1;
}

/** Top of the first slice row of lane l. */
export function sliceTop(d: TimelineData, layout: Layout, l: number): number {
  return layout.laneY[l]! + LANE_PAD + (d.lanes[l]!.slices ? STRIP_H : 0);
}

/** Vertical extent [top, height] of lane l's point events. */
export function pointBand(d: TimelineData, layout: Layout, l: number): [number, number] {
  return [layout.laneY[l]! + LANE_PAD - 1, d.lanes[l]!.slices ? STRIP_H - 1 : ROW_H + 2];
}
