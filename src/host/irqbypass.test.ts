import { describe, expect, it } from 'vitest';
import { ERRNO } from '../abi/errno.js';
import { Engine } from '../sim/engine.js';
import { op, type TaskGen } from '../sim/task.js';
import {
  type IrqBypassConsumer,
  IrqBypassManager,
  type IrqBypassProducer,
  irqBypassRegisterConsumer,
  irqBypassRegisterProducer,
  irqBypassUnregisterConsumer,
  irqBypassUnregisterProducer,
} from './irqbypass.js';

/** A producer logging every callback; stop blocks for a step (disable_irq + synchronize), start is synchronous. */
class Prod implements IrqBypassProducer {
  constructor(
    readonly token: object | null,
    readonly log: string[],
    readonly irq = 33,
  ) {}
  *addConsumer(): TaskGen<number> {
    this.log.push('prod.add_consumer');
    return 0;
  }
  *delConsumer(): TaskGen<void> {
    this.log.push('prod.del_consumer');
  }
  *stop(): TaskGen<void> {
    yield op(0);
    this.log.push('prod.stop');
  }
  start(): undefined {
    this.log.push('prod.start');
    return undefined;
  }
}

class Cons implements IrqBypassConsumer {
  /** What add_producer returns. */
  addRet = 0;
  peer: IrqBypassProducer | null = null;
  constructor(
    readonly token: object | null,
    readonly log: string[],
  ) {}
  *addProducer(prod: IrqBypassProducer): TaskGen<number> {
    this.log.push('cons.add_producer');
    if (this.addRet === 0) this.peer = prod;
    return this.addRet;
  }
  *delProducer(): TaskGen<void> {
    this.log.push('cons.del_producer');
    this.peer = null;
  }
  *stop(): TaskGen<void> {
    yield op(0);
    this.log.push('cons.stop');
  }
  *start(): TaskGen<void> {
    this.log.push('cons.start');
  }
}

/** Run `body` as a task on a fresh engine and settle; return its result. */
function run<R>(body: (m: IrqBypassManager) => TaskGen<R>): { m: IrqBypassManager; ret: R } {
  const e = new Engine({ cpus: 1 });
  const m = new IrqBypassManager(e);
  let ret: R | undefined;
  e.spawn(
    't',
    0,
    (function* (): TaskGen<void> {
      ret = yield* body(m);
    })(),
  );
  e.settle();
  return { m, ret: ret as R };
}

const BRACKET_ADD = [
  'prod.stop',
  'cons.stop',
  'prod.add_consumer',
  'cons.add_producer',
  'cons.start',
  'prod.start',
] as const;

describe('irqbypass.c: producers and consumers matched by token', () => {
  it('__connect in either registration order: stop both, add_consumer, add_producer, start both', () => {
    for (const producerFirst of [true, false]) {
      const log: string[] = [];
      const token = {};
      const p = new Prod(token, log);
      const c = new Cons(token, log);
      const { m, ret } = run(function* (m) {
        const a = producerFirst ? yield* irqBypassRegisterProducer(m, p) : yield* irqBypassRegisterConsumer(m, c);
        const b = producerFirst ? yield* irqBypassRegisterConsumer(m, c) : yield* irqBypassRegisterProducer(m, p);
        return [a, b];
      });
      expect(ret).toEqual([0, 0]);
      expect(log).toEqual(BRACKET_ADD);
      expect(c.peer).toBe(p);
      expect(m.connects).toBe(1);
      expect(m.lock.owner).toBeNull();
    }
  });

  it('a token mismatch registers both and connects nothing', () => {
    const log: string[] = [];
    const p = new Prod({}, log);
    const c = new Cons({}, log);
    const { m, ret } = run(function* (m) {
      return [yield* irqBypassRegisterProducer(m, p), yield* irqBypassRegisterConsumer(m, c)];
    });
    expect(ret).toEqual([0, 0]);
    expect(log).toEqual([]);
    expect(m.producers).toEqual([p]);
    expect(m.consumers).toEqual([c]);
  });

  it('irq_bypass_register_*: EBUSY for a token already registered on that side, EINVAL without a token', () => {
    const log: string[] = [];
    const token = {};
    const { m, ret } = run(function* (m) {
      return [
        yield* irqBypassRegisterProducer(m, new Prod(token, log)),
        yield* irqBypassRegisterProducer(m, new Prod(token, log)),
        yield* irqBypassRegisterConsumer(m, new Cons(token, log)),
        yield* irqBypassRegisterConsumer(m, new Cons(token, log)),
        yield* irqBypassRegisterProducer(m, new Prod(null, log)),
        yield* irqBypassRegisterConsumer(m, new Cons(null, log)),
      ];
    });
    expect(ret).toEqual([0, -ERRNO.EBUSY, 0, -ERRNO.EBUSY, -ERRNO.EINVAL, -ERRNO.EINVAL]);
    expect(m.producers).toHaveLength(1);
    expect(m.consumers).toHaveLength(1);
    expect(m.connects).toBe(1);
  });

  it('__connect: an add_producer failure runs del_consumer, still starts both, and registers nothing', () => {
    const log: string[] = [];
    const token = {};
    const p = new Prod(token, log);
    const c = new Cons(token, log);
    c.addRet = -ERRNO.EEXIST;
    const { m, ret } = run(function* (m) {
      return [yield* irqBypassRegisterProducer(m, p), yield* irqBypassRegisterConsumer(m, c)];
    });
    expect(ret).toEqual([0, -ERRNO.EEXIST]);
    expect(log).toEqual([
      'prod.stop',
      'cons.stop',
      'prod.add_consumer',
      'cons.add_producer',
      'prod.del_consumer',
      'cons.start',
      'prod.start',
    ]);
    expect(m.consumers).toEqual([]);
    expect(c.peer).toBeNull();
    expect(m.connects).toBe(0);
  });

  it('irq_bypass_unregister_*: __disconnect with the bracket, from either side; a second unregister does nothing', () => {
    for (const producerSide of [true, false]) {
      const log: string[] = [];
      const token = {};
      const p = new Prod(token, log);
      const c = new Cons(token, log);
      const { m } = run(function* (m) {
        yield* irqBypassRegisterProducer(m, p);
        yield* irqBypassRegisterConsumer(m, c);
        log.length = 0;
        if (producerSide) {
          yield* irqBypassUnregisterProducer(m, p);
          yield* irqBypassUnregisterProducer(m, p);
        } else {
          yield* irqBypassUnregisterConsumer(m, c);
          yield* irqBypassUnregisterConsumer(m, c);
        }
      });
      expect(log).toEqual([
        'prod.stop',
        'cons.stop',
        'cons.del_producer',
        'prod.del_consumer',
        'cons.start',
        'prod.start',
      ]);
      expect(c.peer).toBeNull();
      expect(producerSide ? m.producers : m.consumers).toEqual([]);
      expect(producerSide ? m.consumers : m.producers).toHaveLength(1);
    }
  });

  it('without the bracket (the checker variant) add/del run alone', () => {
    const log: string[] = [];
    const token = {};
    run(function* (m) {
      m.bracket = false;
      yield* irqBypassRegisterProducer(m, new Prod(token, log));
      const c = new Cons(token, log);
      yield* irqBypassRegisterConsumer(m, c);
      yield* irqBypassUnregisterConsumer(m, c);
    });
    expect(log).toEqual(['prod.add_consumer', 'cons.add_producer', 'cons.del_producer', 'prod.del_consumer']);
  });

  it('the global mutex serialises registrations: a second task waits while a connection is being made', () => {
    const e = new Engine({ cpus: 2 });
    const m = new IrqBypassManager(e);
    const log: string[] = [];
    const token = {};
    e.spawn(
      'a',
      0,
      (function* (): TaskGen<void> {
        yield* irqBypassRegisterProducer(m, new Prod(token, log));
        yield* irqBypassRegisterConsumer(m, new Cons(token, log));
        log.push('a done');
      })(),
    );
    e.spawn(
      'b',
      1,
      (function* (): TaskGen<void> {
        yield* irqBypassRegisterProducer(m, new Prod({}, log));
        log.push('b done');
      })(),
    );
    e.settle();
    // b's registration never lands inside a's stop … start bracket
    const start = log.indexOf('prod.stop');
    const end = log.indexOf('prod.start');
    expect(log.slice(start, end + 1)).toEqual(BRACKET_ADD);
    expect(log).toContain('b done');
    expect(m.producers).toHaveLength(2);
  });
});
