/**
 * The IRQ bypass manager (virt/lib/irqbypass.c, include/linux/irqbypass.h, Linux 6.1): producers (a physical
 * interrupt source, e.g. VFIO's trigger) and consumers (e.g. KVM's irqfd) register independently and are paired when
 * their tokens (the eventfd context) match. A pair is connected with __connect: both stop, the producer's add_consumer
 * then the consumer's add_producer (the producer's del_consumer undoes the first if the second fails), both start
 * again; disconnected with __disconnect, the same bracket around del_producer and del_consumer. One global mutex
 * (`lock`) serialises every registration, so a connection never races another. Tokens are unique per side: a second
 * producer (or consumer) with a token already registered gets EBUSY; a missing token or consumer callback EINVAL.
 *
 * The callbacks are the kernel's function pointers as methods of the classes that embed the structs (no closures);
 * one that may block returns the code to run (a frame or a generator), the optional stop/start may run synchronously
 * and return undefined.
 */
import { ERRNO } from '../abi/errno.js';
import type { Engine } from '../sim/engine.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { Mutex, mutexLock } from '../sim/locks.js';
import { current, type Op } from '../sim/task.js';

/** Kernel code a callback runs: a frame or a generator. */
export type KernelCall<R> = Iterator<Op, R, unknown>;

/** struct irq_bypass_producer. */
export interface IrqBypassProducer {
  /** Matched against consumers' tokens (non-null to register). */
  readonly token: object | null;
  /** The Linux IRQ number of the producer device. */
  readonly irq: number;
  addConsumer?(cons: IrqBypassConsumer): KernelCall<number>;
  delConsumer?(cons: IrqBypassConsumer): KernelCall<void>;
  /** Quiesce before add/del (optional). */
  stop?(): KernelCall<void> | undefined;
  /** Resume after add/del (optional). */
  start?(): KernelCall<void> | undefined;
}

/** struct irq_bypass_consumer. */
export interface IrqBypassConsumer {
  readonly token: object | null;
  addProducer(prod: IrqBypassProducer): KernelCall<number>;
  delProducer(prod: IrqBypassProducer): KernelCall<void>;
  stop?(): KernelCall<void> | undefined;
  start?(): KernelCall<void> | undefined;
}

/** The manager's state: static LIST_HEAD(producers), LIST_HEAD(consumers), DEFINE_MUTEX(lock) of irqbypass.c. */
export class IrqBypassManager {
  readonly producers: IrqBypassProducer[] = [];
  readonly consumers: IrqBypassConsumer[] = [];
  readonly lock: Mutex;
  /**
   * Whether __connect/__disconnect bracket add/del with the stop/start callbacks (always, in the kernel). False only
   * for the checker's 'bypass-no-bracket' variant, which shows what the bracket is for.
   */
  bracket = true;
  /** Pairs connected so far (a statistic for tests). */
  connects = 0;

  constructor(engine: Engine) {
    this.lock = new Mutex(engine, 'irqbypass.lock');
  }

  /** The registered consumer a producer with `token` connects to (tokens are unique per side). */
  consumerOf(token: object | null): IrqBypassConsumer | undefined {
    return this.consumers.find((c) => c.token === token);
  }

  /** The registered producer with `token`. */
  producerOf(token: object | null): IrqBypassProducer | undefined {
    return this.producers.find((p) => p.token === token);
  }
}

function remove<T>(list: T[], x: T): void {
  const i = list.indexOf(x);
  if (i >= 0) list.splice(i, 1);
}

/** Release the manager's lock if an exception left it held by this task (a frame's unwind). */
function unlockIfHeld(m: IrqBypassManager): void {
  if (m.lock.owner === current()) m.lock.unlock();
}

const CONNECT_PROD_STOP = 0;
const CONNECT_CONS_STOP = 1;
const CONNECT_ADD_CONSUMER = 2;
const CONNECT_ADD_PRODUCER = 3;
const CONNECT_ADDED = 4;
const CONNECT_DEL_CONSUMER = 5;
const CONNECT_CONS_START = 6;
const CONNECT_PROD_START = 7;
const CONNECT_RETURN = 8;

/** __connect (@lock held): stop both, add_consumer then add_producer (del_consumer if it fails), start both. */
class Connect extends Frame<number> {
  private ret = 0;

  constructor(
    private readonly m: IrqBypassManager,
    private readonly prod: IrqBypassProducer,
    private readonly cons: IrqBypassConsumer,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const { m, prod, cons } = this;
    for (;;) {
      switch (this.pc) {
        case CONNECT_PROD_STOP: {
          this.pc = CONNECT_CONS_STOP;
          const c = m.bracket ? prod.stop?.() : undefined;
          if (c !== undefined) return this.call(c);
          break;
        }
        case CONNECT_CONS_STOP: {
          this.pc = CONNECT_ADD_CONSUMER;
          const c = m.bracket ? cons.stop?.() : undefined;
          if (c !== undefined) return this.call(c);
          break;
        }
        case CONNECT_ADD_CONSUMER:
          this.pc = CONNECT_ADD_PRODUCER;
          if (prod.addConsumer !== undefined) return this.call(prod.addConsumer(cons));
          sent = 0;
          break;
        case CONNECT_ADD_PRODUCER:
          this.ret = sent as number;
          if (this.ret !== 0) {
            this.pc = CONNECT_CONS_START;
            break;
          }
          this.pc = CONNECT_ADDED;
          return this.call(cons.addProducer(prod));
        case CONNECT_ADDED:
          this.ret = sent as number;
          this.pc = CONNECT_CONS_START;
          if (this.ret !== 0 && prod.delConsumer !== undefined) {
            this.pc = CONNECT_DEL_CONSUMER;
            return this.call(prod.delConsumer(cons));
          }
          break;
        case CONNECT_DEL_CONSUMER:
          this.pc = CONNECT_CONS_START;
          break;
        case CONNECT_CONS_START: {
          this.pc = CONNECT_PROD_START;
          const c = m.bracket ? cons.start?.() : undefined;
          if (c !== undefined) return this.call(c);
          break;
        }
        case CONNECT_PROD_START: {
          this.pc = CONNECT_RETURN;
          const c = m.bracket ? prod.start?.() : undefined;
          if (c !== undefined) return this.call(c);
          break;
        }
        default:
          if (this.ret === 0) m.connects++;
          return this.return_(this.ret);
      }
    }
  }
}

const DISCONNECT_PROD_STOP = 0;
const DISCONNECT_CONS_STOP = 1;
const DISCONNECT_DEL_PRODUCER = 2;
const DISCONNECT_DEL_CONSUMER = 3;
const DISCONNECT_CONS_START = 4;
const DISCONNECT_PROD_START = 5;
const DISCONNECT_RETURN = 6;

/** __disconnect (@lock held): stop both, del_producer, del_consumer, start both. */
class Disconnect extends Frame {
  constructor(
    private readonly m: IrqBypassManager,
    private readonly prod: IrqBypassProducer,
    private readonly cons: IrqBypassConsumer,
  ) {
    super();
  }

  protected step(): Boundary {
    const { m, prod, cons } = this;
    for (;;) {
      switch (this.pc) {
        case DISCONNECT_PROD_STOP: {
          this.pc = DISCONNECT_CONS_STOP;
          const c = m.bracket ? prod.stop?.() : undefined;
          if (c !== undefined) return this.call(c);
          break;
        }
        case DISCONNECT_CONS_STOP: {
          this.pc = DISCONNECT_DEL_PRODUCER;
          const c = m.bracket ? cons.stop?.() : undefined;
          if (c !== undefined) return this.call(c);
          break;
        }
        case DISCONNECT_DEL_PRODUCER:
          this.pc = DISCONNECT_DEL_CONSUMER;
          return this.call(cons.delProducer(prod));
        case DISCONNECT_DEL_CONSUMER:
          this.pc = DISCONNECT_CONS_START;
          if (prod.delConsumer !== undefined) return this.call(prod.delConsumer(cons));
          break;
        case DISCONNECT_CONS_START: {
          this.pc = DISCONNECT_PROD_START;
          const c = m.bracket ? cons.start?.() : undefined;
          if (c !== undefined) return this.call(c);
          break;
        }
        case DISCONNECT_PROD_START: {
          this.pc = DISCONNECT_RETURN;
          const c = m.bracket ? prod.start?.() : undefined;
          if (c !== undefined) return this.call(c);
          break;
        }
        default:
          return this.return_(undefined);
      }
    }
  }
}

const REG_LOCK = 0;
const REG_LOCKED = 1;
const REG_CONNECTED = 2;

/**
 * irq_bypass_register_producer / irq_bypass_register_consumer: EINVAL without a token, EBUSY for a token (or, for a
 * consumer, the same consumer) already registered; connect with the matching peer if there is one — its failure is
 * returned and nothing is registered; else add to the list.
 */
class IrqBypassRegister extends Frame<number> {
  constructor(
    private readonly m: IrqBypassManager,
    private readonly prod: IrqBypassProducer | null,
    private readonly cons: IrqBypassConsumer | null,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const { m, prod, cons } = this;
    switch (this.pc) {
      case REG_LOCK:
        if (prod !== null && prod.token === null) return this.return_(-ERRNO.EINVAL);
        if (cons !== null && cons.token === null) return this.return_(-ERRNO.EINVAL);
        this.pc = REG_LOCKED;
        return this.call(mutexLock(m.lock));
      case REG_LOCKED: {
        if (prod !== null) {
          if (m.producerOf(prod.token) !== undefined) return this.unlockReturn(-ERRNO.EBUSY);
          const peer = m.consumerOf(prod.token);
          this.pc = REG_CONNECTED;
          if (peer !== undefined) return this.call(new Connect(m, prod, peer));
        } else if (cons !== null) {
          if (m.consumers.some((c) => c.token === cons.token || c === cons)) return this.unlockReturn(-ERRNO.EBUSY);
          const peer = m.producerOf(cons.token);
          this.pc = REG_CONNECTED;
          if (peer !== undefined) return this.call(new Connect(m, peer, cons));
        }
        sent = 0;
        return this.added(sent);
      }
      default:
        return this.added(sent);
    }
  }

  private added(ret: unknown): Boundary {
    if (ret !== 0) return this.unlockReturn(ret as number);
    if (this.prod !== null) this.m.producers.unshift(this.prod); // list_add: at the head
    if (this.cons !== null) this.m.consumers.unshift(this.cons);
    return this.unlockReturn(0);
  }

  private unlockReturn(ret: number): Boundary {
    this.m.lock.unlock();
    return this.return_(ret);
  }

  protected override unwind(): void {
    unlockIfHeld(this.m);
  }
}

/**
 * irq_bypass_unregister_producer / irq_bypass_unregister_consumer: nothing without a token; if registered, disconnect
 * from the peer with the same token, if any, and leave the list.
 */
class IrqBypassUnregister extends Frame {
  constructor(
    private readonly m: IrqBypassManager,
    private readonly prod: IrqBypassProducer | null,
    private readonly cons: IrqBypassConsumer | null,
  ) {
    super();
  }

  protected step(): Boundary {
    const { m, prod, cons } = this;
    switch (this.pc) {
      case REG_LOCK:
        if ((prod ?? cons)!.token === null) return this.return_(undefined);
        this.pc = REG_LOCKED;
        return this.call(mutexLock(m.lock));
      case REG_LOCKED:
        this.pc = REG_CONNECTED;
        if (prod !== null) {
          // 6.1 looks the producer up by its token
          if (m.producerOf(prod.token) === undefined) break;
          const peer = m.consumerOf(prod.token);
          if (peer !== undefined) return this.call(new Disconnect(m, prod, peer));
        } else if (cons !== null) {
          if (!m.consumers.includes(cons)) break;
          const peer = m.producerOf(cons.token);
          if (peer !== undefined) return this.call(new Disconnect(m, peer, cons));
        }
        break;
      default:
        break;
    }
    if (prod !== null) remove(m.producers, prod);
    if (cons !== null) remove(m.consumers, cons);
    m.lock.unlock();
    return this.return_(undefined);
  }

  protected override unwind(): void {
    unlockIfHeld(this.m);
  }
}

export function irqBypassRegisterProducer(m: IrqBypassManager, prod: IrqBypassProducer): Frame<number> {
  return new IrqBypassRegister(m, prod, null);
}

export function irqBypassUnregisterProducer(m: IrqBypassManager, prod: IrqBypassProducer): Frame {
  return new IrqBypassUnregister(m, prod, null);
}

export function irqBypassRegisterConsumer(m: IrqBypassManager, cons: IrqBypassConsumer): Frame<number> {
  return new IrqBypassRegister(m, null, cons);
}

export function irqBypassUnregisterConsumer(m: IrqBypassManager, cons: IrqBypassConsumer): Frame {
  return new IrqBypassUnregister(m, null, cons);
}
