/**
 * Label placement without overlap: a label is drawn only where its box meets no box placed before it in the frame,
 * trying a few candidate positions in turn. Boxes are bucketed by 64 px columns so a frame of many labels stays
 * cheap. Pure: unit-tested in node; the page exposes the placed boxes to its browser test.
 */

export type Box = readonly [x: number, y: number, w: number, h: number];

const COL = 64;

export function overlaps(a: Box, b: Box): boolean {
  return a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
}

export class Labeler {
  readonly boxes: Box[] = [];
  /** The text of each placed box. */
  readonly texts: string[] = [];
  private readonly cols = new Map<number, Box[]>();

  clear(): void {
    this.boxes.length = 0;
    this.texts.length = 0;
    this.cols.clear();
  }

  free(b: Box): boolean {
    for (let c = Math.floor(b[0] / COL); c <= Math.floor((b[0] + b[2]) / COL); c++)
      for (const o of this.cols.get(c) ?? []) if (overlaps(b, o)) return false;
    return true;
  }

  /** Takes the first free candidate, returns its index (or -1: nothing placed). */
  place(candidates: readonly Box[], text = ''): number {
    for (let k = 0; k < candidates.length; k++) {
      const b = candidates[k]!;
      if (!this.free(b)) continue;
      this.boxes.push(b);
      this.texts.push(text);
      for (let c = Math.floor(b[0] / COL); c <= Math.floor((b[0] + b[2]) / COL); c++) {
        let col = this.cols.get(c);
        if (col === undefined) {
          col = [];
          this.cols.set(c, col);
        }
        col.push(b);
      }
      return k;
    }
    return -1;
  }
}
