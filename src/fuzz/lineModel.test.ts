import { describe, expect, it } from 'vitest';
import {
  closure,
  fireWhileAsserted,
  freeIrq,
  LINE_AT_BOOT,
  type LineState,
  requestTrigger,
  unforward,
  vfioMask,
  vfioUnmask,
} from './lineModel.js';

const LEVEL = { requested: true, forwarded: false, level: true };
const pipe = (s: LineState, ...ops: ((x: LineState) => LineState)[]) => ops.reduce((x, op) => op(x), s);

describe("the reference model's line (genirq depth/started/chip, vfio masked)", () => {
  it('trigger → the automask handler → free_irq → UNMASK: __enable_irq at depth 1 starts the freed line (6.1)', () => {
    const s = pipe(LINE_AT_BOOT, requestTrigger, (x) => fireWhileAsserted(x, LEVEL), freeIrq, vfioUnmask);
    expect(s).toEqual({ depth: 0, started: true, chipOn: true, masked: false });
  });

  it('MASK after free_irq of an unmasked index makes depth 2: the UNMASK only drops it to 1, nothing starts', () => {
    const s = pipe(LINE_AT_BOOT, requestTrigger, freeIrq, vfioMask, vfioUnmask);
    expect(s).toEqual({ depth: 1, started: false, chipOn: false, masked: false });
  });

  it('a level line held asserted is masked at the chip after the handler disabled it (lazy disable)', () => {
    const s = fireWhileAsserted(requestTrigger(LINE_AT_BOOT), LEVEL);
    expect(s).toEqual({ depth: 1, started: true, chipOn: false, masked: true });
  });

  it('unforwarding keeps both outcomes (the guest may still hold the vIRQ), and a chain closes over mask/unmask', () => {
    const fwd = requestTrigger(LINE_AT_BOOT);
    expect(unforward(fwd).map((s) => s.masked)).toEqual([false, true]);
    expect(closure([fwd], [vfioMask, vfioUnmask]).map((s) => [s.depth, s.masked])).toEqual([
      [0, false],
      [1, true],
    ]);
  });
});
