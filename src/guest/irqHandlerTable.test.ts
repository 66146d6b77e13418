import { describe, expect, it } from 'vitest';
import type { GuestIrqHandler } from './gicDriver.js';
import { GuestIrqHandlerTable } from './irqHandlerTable.js';

const handler = (name: string): GuestIrqHandler => ({
  name,
  *handle() {
    return true;
  },
});

describe('GuestIrqHandlerTable (request_irq)', () => {
  it('registered INTIDs below, between and above the first find their handler and count; others find none', () => {
    const t = new GuestIrqHandlerTable();
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
    t.countHandled(40);
    t.countHandled(90);
    t.countHandled(90);
    t.countHandled(8192);
    expect([...t.handledByIntid()]).toEqual([
      [80, 0],
      [40, 1],
      [90, 2],
      [8192, 1],
    ]);
    expect(() => t.register(40, handler('again'))).toThrow(/already has handler b/);
  });
});
