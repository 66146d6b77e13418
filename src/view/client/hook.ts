/** What the page exposes as `window.__irqfwdView` for the browser test (src/view/view.browser.test.ts). */
export interface ViewHook {
  ready: boolean;
  lanes: string[];
  laneKinds: string[];
  items: number;
  chains: number;
  /** Items painted one by one in the last frame. */
  drawn: number;
  /** Lanes painted as density in the last frame, and their buckets. */
  densityLanes: number;
  buckets: number;
  /** Every text label's box [x, y, w, h] on the lanes canvas in the last frame. */
  labelBoxes: number[][];
  labelTexts: string[];
  /** The checker steps the page marks as mattering (their schedule indices). */
  markedStepIndices: number[];
  /**
   * Set once the latency panel is built (just after the first frame); then, per run, its IRQs (causal chains) and
   * the latency histograms' counts.
   */
  latencyReady: boolean;
  irqs: number[];
  histogram: { delivery: number[][]; total: number[][] };
  frames: number;
  setView(t0: number, t1: number): void;
  /** What the `fit` button does: the whole run. */
  showAll(): void;
  findItem(name: string, nth?: number): number;
  itemScreenPos(i: number): { x: number; y: number } | null;
}
