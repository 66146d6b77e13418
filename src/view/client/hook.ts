/** What the page exposes as `window.__irqfwdView` for the browser test (src/view/view.browser.test.ts). */
export interface ViewHook {
  ready: boolean;
  lanes: string[];
  laneKinds: string[];
  items: number;
  chains: number;
  markedSteps: number;
  drawn: number;
  frames: number;
  setView(t0: number, t1: number): void;
  findItem(name: string, nth?: number): number;
  itemScreenPos(i: number): { x: number; y: number } | null;
}
