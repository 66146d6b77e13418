/**
 * A guest driver for one interrupt line of a passed-through platform device. The device's register block is
 * stage-2 mapped into the guest (VFIO region mmap'ed by the VMM), so the driver's accesses are direct, costed
 * register accesses and never exit. The handler reads IRQ_STATUS, does its work, and writes the line's bit to
 * IRQ_ACK, which silences the device (a level line drops) before the GIC driver completes the interrupt.
 */
import { PDEV_IRQ_ACK, PDEV_IRQ_STATUS, type PlatformDevice } from '../hw/platformDevice.js';
import { defineCost } from '../sim/costs.js';
import type { GuestCpu } from '../sim/cpu.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { op } from '../sim/task.js';
import type { GuestIrqHandler, GuestTrigger } from './gicDriver.js';
import { asProbe, type Probe, type ProbeObject } from './guestProbe.js';
import type { GuestTraceHooks } from './guestTrace.js';

export const C_GUEST_PDEV_READ = defineCost(
  'guest_pdev_read',
  150,
  'guest load from a stage-2 mapped Device-nGnRE register (no exit): uncached round trip to the device; estimate, no published figure',
);
export const C_GUEST_PDEV_WRITE = defineCost(
  'guest_pdev_write',
  50,
  'guest store to a stage-2 mapped Device-nGnRE register (posted write, no exit); estimate, no published figure',
);

/** A cost id for `cycles` of guest work (handler bodies, workload steps): one named cost per distinct figure. */
export function guestWorkCost(cycles: number): number {
  if (!Number.isInteger(cycles) || cycles < 0)
    throw new ModelError(`guest work must be whole cycles ≥ 0, got ${cycles}`);
  return defineCost(`guest_work_${cycles}`, cycles, 'guest handler or workload compute, from the scenario options');
}

/** The device side of a passthrough line as the guest driver uses it (a PlatformDevice satisfies it). */
export type GuestDevice = Pick<PlatformDevice, 'name' | 'lines' | 'readReg' | 'writeReg'> & { readonly oid?: number };

export interface GuestDeviceLineOptions {
  device: GuestDevice;
  /** Index of the line in device.lines (the bit in IRQ_STATUS / IRQ_ACK). */
  line: number;
  /** The INTID the guest sees (the vIRQ the VMM wired the line to); default: the line's own INTID. */
  intid?: number;
  /** Default: the line's trigger. */
  trigger?: GuestTrigger;
  /** vCPU the SPI targets at boot; default 0. */
  target?: number;
  /** GICD_IPRIORITYR of the SPI; default the guest's. */
  priority?: number;
  /** Cycles of handler work between reading the status and acknowledging; default 0. */
  handlerCycles?: number;
  /** Object id of the device's register block (checker independence); default a new oid. */
  oid?: number;
  /**
   * When the device asserted the condition the handler is about to serve (cycles), or undefined if unknown. The
   * scenario supplies it (e.g. from PlatformDevice.onLineChange); the driver records handler-entry latency from it (a
   * Probe).
   */
  assertedAt?: Probe<'assertedAt', (line: number) => number | undefined>;
  /** Called with each latency sample (line asserted → handler reads the status), in cycles (a Probe). */
  onLatency?: Probe<'onLatency', (cycles: number, vcpu: number) => void>;
}

/** A guest driver bound to one device line; registered with the GIC driver as the handler of `intid`. */
export class GuestDeviceDriver implements GuestIrqHandler {
  // What the handler touches on every IRQ first (an object's fields are laid out in declaration order), the
  // set-up-only and reporting fields after them.
  readonly device: GuestDevice;
  readonly oid: number;
  private readonly bit: number;
  readonly handlerCycles: number;
  readonly workCost: number;
  /** Interrupts served (the status bit was set and the handler acknowledged it). */
  handled = 0;
  /** The guest_irq_entry tracepoint (guestTrace.ts), null when untraced. */
  trace: GuestTraceHooks | null = null;
  private readonly assertedAt: ProbeObject<'assertedAt', (line: number) => number | undefined> | undefined;
  /** Handler calls that found the line's status bit clear (IRQ_NONE: coalesced or withdrawn by the device). */
  noStatus = 0;
  /** Latency samples (assertion → handler entry): count, sum, min, max in cycles. */
  latencyCount = 0;
  latencySum = 0;
  latencyMin = Number.POSITIVE_INFINITY;
  latencyMax = 0;
  private readonly engine: Engine;
  private readonly onLatency: ProbeObject<'onLatency', (cycles: number, vcpu: number) => void> | undefined;
  readonly name: string;
  readonly line: number;
  readonly intid: number;
  readonly trigger: GuestTrigger;
  readonly target: number;

  constructor(engine: Engine, opts: GuestDeviceLineOptions) {
    const l = opts.device.lines[opts.line];
    if (l === undefined) throw new ModelError(`${opts.device.name} has no interrupt line ${opts.line}`);
    this.engine = engine;
    this.device = opts.device;
    this.line = opts.line;
    this.intid = opts.intid ?? l.intid;
    this.trigger = opts.trigger ?? l.trigger;
    this.target = opts.target ?? 0;
    this.handlerCycles = opts.handlerCycles ?? 0;
    this.workCost = guestWorkCost(this.handlerCycles);
    this.bit = 1 << opts.line;
    this.name = `${opts.device.name}.${opts.line}`;
    this.oid = opts.oid ?? opts.device.oid ?? -1;
    if (this.oid < 0) this.oid = engine.newOid(`${this.name}.regs`);
    this.assertedAt = asProbe('assertedAt', opts.assertedAt);
    this.onLatency = asProbe('onLatency', opts.onLatency);
  }

  /** The device driver's interrupt handler: read IRQ_STATUS, work, write IRQ_ACK. */
  handle(_g: GuestCpu, vcpu: number): Frame<boolean> {
    return new GuestDeviceIrqHandler(this, vcpu);
  }

  /** After the IRQ_STATUS read: is the line's condition set? Records the handler-entry latency if so. */
  statusRead(vcpu: number): boolean {
    const status = this.device.readReg(PDEV_IRQ_STATUS);
    if ((status & this.bit) === 0) {
      this.noStatus++;
      return false;
    }
    this.trace?.deviceIrq(vcpu, this);
    if (this.assertedAt !== undefined) {
      const t = this.assertedAt.assertedAt(this.line);
      if (t !== undefined) {
        const lat = this.engine.now - t;
        this.latencyCount++;
        this.latencySum += lat;
        if (lat < this.latencyMin) this.latencyMin = lat;
        if (lat > this.latencyMax) this.latencyMax = lat;
        this.onLatency?.onLatency(lat, vcpu);
      }
    }
    return true;
  }

  /** The IRQ_ACK write: the device drops the condition (a level line falls). Per vCPU: the GIC driver's kstat. */
  acked(): void {
    this.device.writeReg(PDEV_IRQ_ACK, this.bit);
    this.handled++;
  }
}

/** The handler reads IRQ_STATUS. */
const PC_READ = 0;
/** The status is back. */
const PC_STATUS = 1;
/** The handler's work is done: write IRQ_ACK. */
const PC_WORKED = 2;
/** IRQ_ACK written: IRQ_HANDLED. */
const PC_ACK = 3;

/** GuestDeviceDriver.handle as a frame: returns IRQ_HANDLED (true) or IRQ_NONE (false). */
class GuestDeviceIrqHandler extends Frame<boolean> {
  constructor(
    private readonly d: GuestDeviceDriver,
    private readonly vcpu: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const d = this.d;
    switch (this.pc) {
      case PC_READ:
        this.pc = PC_STATUS;
        return this.yield_(op(C_GUEST_PDEV_READ, d.oid));
      case PC_STATUS:
        if (!d.statusRead(this.vcpu)) return this.return_(false);
        if (d.handlerCycles > 0) {
          this.pc = PC_WORKED;
          return this.yield_(op(d.workCost));
        }
        return this.ackStep();
      case PC_WORKED:
        return this.ackStep();
      default:
        d.acked();
        return this.return_(true);
    }
  }

  private ackStep(): Boundary {
    this.pc = PC_ACK;
    return this.yield_(op(C_GUEST_PDEV_WRITE, this.d.oid));
  }
}
