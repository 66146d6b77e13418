/** Virtual time is counted in CPU cycles; the clock rate converts to wall units for traces and metrics. */
export class Clock {
  constructor(readonly hz: number) {
    if (!(hz > 0)) throw new RangeError(`clock rate must be positive, got ${hz}`);
  }

  cyclesToNs(cycles: number): number {
    return (cycles * 1e9) / this.hz;
  }

  nsToCycles(ns: number): number {
    return Math.round((ns * this.hz) / 1e9);
  }

  usToCycles(us: number): number {
    return Math.round((us * this.hz) / 1e6);
  }
}
