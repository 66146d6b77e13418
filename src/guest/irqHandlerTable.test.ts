import { describe, expect, it } from 'vitest';
import type { GuestIrqHandler } from './gicDriver.js';
import { GuestIrqHandlerTable } from './irqHandlerTable.js';

const handler = (name: string): GuestIrqHandler => ({
  name,
  *handle() {
    return true;
  },
});

describe('GuestIrqHandlerTable (request_irq, kstat_irqs)', () => {
  it('registered INTIDs below, between and above the first find their handler and count; others find none', () => {
    const t = new GuestIrqHandlerTable(1);
    const [a, b, c, lpi] = [handler('a'), handler('b'), handler('c'), handler('lpi')];
    t.register(80, a);
    t.register(40, b); // below the lowest so far
    t.register(90, c);
    t.register(8192, lpi);
    expect([t.handlerOf(80), t.handlerOf(40), t.handlerOf(90), t.handlerOf(8192)]).toEqual([a, b, c, lpi]);
    expect([t.handlerOf(0), t.handlerOf(39), t.handlerOf(60), t.handlerOf(91), t.handlerOf(8193)]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    t.countHandled(40, 0);
    t.countHandled(90, 0);
    t.countHandled(90, 0);
    t.countHandled(8192, 0);
    expect([...t.handledByIntid()]).toEqual([
      [80, 0],
      [40, 1],
      [90, 2],
      [8192, 1],
    ]);
    expect(() => t.register(40, handler('again'))).toThrow(/already has handler b/);
  });

  it('counts per vCPU (kstat_irqs_cpu) and keeps them when a lower or higher INTID is registered later', () => {
    const t = new GuestIrqHandlerTable(3);
    t.register(50, handler('a'));
    t.countHandled(50, 2);
    t.countHandled(50, 2);
    t.countHandled(50, 0);
    t.register(33, handler('b')); // the slots move up by 17
    t.register(70, handler('c'));
    t.countHandled(33, 1);
    t.countHandled(70, 2);
    expect([0, 1, 2].map((v) => t.kstatIrqsCpu(50, v))).toEqual([1, 0, 2]);
    expect([0, 1, 2].map((v) => t.kstatIrqsCpu(33, v))).toEqual([0, 1, 0]);
    expect([0, 1, 2].map((v) => t.kstatIrqsCpu(70, v))).toEqual([0, 0, 1]);
    expect([...t.handledByIntid()]).toEqual([
      [50, 3],
      [33, 1],
      [70, 1],
    ]);
    expect(() => t.kstatIrqsCpu(60, 0)).toThrow(/no per-vCPU count/);
    expect(() => t.kstatIrqsCpu(50, 3)).toThrow(/no guest vCPU 3/);
  });
});
