/**
 * The guest side of a vCPU as KVM sees it: a pluggable `GuestFactory` (src/guest plugs the real guest kernel in;
 * scenarios pass it to `new Kvm(..., { guestFactory })`), the trap protocol helpers guest code uses, and a default
 * minimal guest for tests.
 *
 * Trap protocol (src/kvm/arm/esr.ts, src/sim/cpu.ts GuestCpu): guest code yields `trap(ESR_ELx_EC_*, arg)`.
 * - WFI: `yield trap(ESR_ELx_EC_WFx)`; the vCPU blocks in the host until an interrupt is pending, then re-enters.
 * - data abort (MMIO to an unmapped IPA, e.g. the emulated distributor): fill `g.mmio {isWrite, len, data}`, then
 *   `const v = yield trap(ESR_ELx_EC_DABT_LOW, ipa)`; a read's value comes back as the trap's resume value.
 * The virtual CPU interface (GICV) is stage-2 mapped: guest code accesses `env.vif()` directly, without a trap.
 */

import { ESR_ELx_EC_DABT_LOW, ESR_ELx_EC_WFx } from '../hw/esr.js';
import { GIC_DIST_CONFIG, GIC_DIST_CTRL, GIC_DIST_ENABLE_SET, GIC_DIST_PRI, GIC_DIST_TARGET } from '../hw/gic/regs.js';
import type { GicVirtualInterface } from '../hw/gic/virtualInterface.js';
import { defineCost } from '../sim/costs.js';
import type { GuestCpu } from '../sim/cpu.js';
import type { Engine } from '../sim/engine.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { eret, op, type TaskBody, trap } from '../sim/task.js';
import type { Kvm } from './kvm.js';
import type { KvmVcpu } from './vcpu.js';
import type { KvmVm } from './vm.js';

export const C_GUEST_GICV_IAR = defineCost(
  'default_guest_gicv_iar',
  36,
  'guest GICV_IAR read: half of ISCA 2016 Table II "Virtual IRQ Completion" (ack + EOI) = 71 cycles [R]',
);
export const C_GUEST_GICV_EOIR = defineCost(
  'default_guest_gicv_eoir',
  35,
  'guest GICV_EOIR write: the other half of ISCA 2016 Table II "Virtual IRQ Completion" = 71 cycles [R]',
);
export const C_GUEST_INSN = defineCost('default_guest_insn', 10, 'a few guest instructions (register setup); estimate');

/** What guest code can reach of its vCPU. */
export interface GuestVcpuEnv {
  readonly kvm: Kvm;
  readonly vm: KvmVm;
  readonly vcpu: KvmVcpu;
  readonly engine: Engine;
  /** The vCPU's guest context (mmio record, trap task); valid once guest code runs. */
  guest(): GuestCpu;
  /** The GICV/GICH of the physical CPU the vCPU is loaded on (only while guest code runs). */
  vif(): GicVirtualInterface;
  /** IPA of the emulated distributor, or -1 when none is set. */
  distBase(): number;
}

/** Creates the guest kernel of each vCPU, at the vCPU's first KVM_RUN. */
export interface GuestFactory {
  createGuest(env: GuestVcpuEnv): { thread: TaskBody; irqVector: TaskBody };
}

/** A guest MMIO access: fill g.mmio, trap (a data abort), and after the re-entry a read's value. */
class GuestMmioAccess extends Frame<number> {
  constructor(
    private readonly g: GuestCpu,
    private readonly ipa: number,
    private readonly len: number,
    private readonly isWrite: boolean,
    private readonly data: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc === 1) return this.return_(typeof sent === 'number' ? sent : 0);
    const mmio = this.g.mmio;
    mmio.isWrite = this.isWrite;
    mmio.len = this.len;
    mmio.data = this.data >>> 0;
    this.pc = 1;
    return this.yield_(trap(ESR_ELx_EC_DABT_LOW, this.ipa));
  }
}

/** A guest MMIO write (data abort trap). */
export function guestMmioWrite(g: GuestCpu, ipa: number, len: number, data: number): Frame<number> {
  return new GuestMmioAccess(g, ipa, len, true, data);
}

/** A guest MMIO read (data abort trap); returns the emulated value. */
export function guestMmioRead(g: GuestCpu, ipa: number, len: number): Frame<number> {
  return new GuestMmioAccess(g, ipa, len, false, 0);
}

/** WFI: the trap; the vCPU resumes once an interrupt is pending. */
class GuestWfi extends Frame {
  protected step(): Boundary {
    if (this.pc === 1) return this.return_(undefined);
    this.pc = 1;
    return this.yield_(trap(ESR_ELx_EC_WFx));
  }
}

/** WFI. */
export function guestWfi(): Frame {
  return new GuestWfi();
}

// ---- the default guest ----------------------------------------------------------------------------------------

export interface DefaultGuestSpi {
  intid: number;
  /** Level-sensitive (default) or edge. */
  edge?: boolean;
  /** GICD_IPRIORITYR value (default 0xa0). */
  priority?: number;
}

export interface DefaultGuestOptions {
  /** SPIs the guest configures, targets at its vCPU and enables at boot (through trapped distributor writes). */
  spis?: DefaultGuestSpi[];
  /** Called in the guest IRQ handler (after IAR, before EOIR) for each acknowledged INTID. */
  onIrq?: (vcpu: KvmVcpu, intid: number) => void;
}

/** What the default guest saw, per vCPU index. */
export class DefaultGuestStats {
  irqs = 0;
  spurious = 0;
  /** INTIDs in the order the guest acknowledged them. */
  readonly order: number[] = [];
  readonly byIntid = new Map<number, number>();
  booted = false;
}

/**
 * The minimal guest: boot with IRQs masked (GICV_CTLR enable, PMR 0xf8, GICD_CTLR enable, then each configured SPI:
 * ICFGR, IPRIORITYR, ITARGETSR = this vCPU, ISENABLER), unmask, then WFI forever;
 * its IRQ vector acknowledges one interrupt through GICV_IAR, counts it, and EOIs it (EOImode 0).
 */
export class DefaultGuest implements GuestFactory {
  readonly stats: DefaultGuestStats[] = [];

  constructor(readonly opts: DefaultGuestOptions = {}) {}

  statsOf(vcpuIdx: number): DefaultGuestStats {
    let s = this.stats[vcpuIdx];
    if (s === undefined) {
      s = new DefaultGuestStats();
      this.stats[vcpuIdx] = s;
    }
    return s;
  }

  /** Total IRQs handled over all vCPUs. */
  get totalIrqs(): number {
    return this.stats.reduce((n, s) => n + (s?.irqs ?? 0), 0);
  }

  createGuest(env: GuestVcpuEnv): { thread: TaskBody; irqVector: TaskBody } {
    const stats = this.statsOf(env.vcpu.idx);
    return { thread: new DefaultGuestThread(this, env, stats), irqVector: new DefaultGuestIrqVector(this, env, stats) };
  }
}

/** The default guest's boot: GICV_CTLR, GICV_PMR, then (with a distributor) GICD_CTLR on vCPU 0. */
const DG_BOOT = 0;
/** GICV set up: the distributor. */
const DG_CPU_UP = 1;
/** The SPIs, one by one: ICFGR read. */
const DG_SPI = 2;
/** ICFGR is back: write it. */
const DG_CFG = 3;
/** IPRIORITYR, ITARGETSR, ISENABLER of this SPI. */
const DG_PRI = 4;
const DG_TARGET = 5;
const DG_ENABLE = 6;
/** This SPI is configured. */
const DG_SPI_DONE = 7;
/** The step that ends the boot. */
const DG_BOOTED = 8;
/** Booted: IRQs unmasked, then WFI forever. */
const DG_IDLE = 9;

/** DefaultGuest's vCPU thread as a frame (see DefaultGuest). */
class DefaultGuestThread extends Frame {
  private base = -1;
  /** The next configured SPI. */
  private i = 0;

  constructor(
    private readonly guest: DefaultGuest,
    private readonly env: GuestVcpuEnv,
    private readonly stats: DefaultGuestStats,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const env = this.env;
    const spis = this.guest.opts.spis ?? [];
    switch (this.pc) {
      case DG_BOOT:
        this.pc = DG_CPU_UP;
        return this.yield_(op(C_GUEST_INSN));
      case DG_CPU_UP: {
        const vif = env.vif();
        vif.write(0x00, 1); // GICV_CTLR.Enable
        vif.write(0x04, 0xf8); // GICV_PMR
        const g = env.guest();
        g.irqMasked = true; // boot with interrupts masked, as a kernel does until its IRQ setup is done
        this.base = env.distBase();
        if (this.base < 0) return this.booted();
        if (env.vcpu.idx === 0) {
          this.pc = DG_SPI;
          return this.call(guestMmioWrite(g, this.base + GIC_DIST_CTRL, 4, 1));
        }
        return this.spi();
      }
      case DG_SPI:
        return this.spi();
      case DG_CFG: {
        const id = spis[this.i]!;
        const bit = 1 << ((id.intid & 15) * 2 + 1);
        const cfg = sent as number;
        this.pc = DG_PRI;
        return this.write(GIC_DIST_CONFIG + (id.intid >> 4) * 4, 4, id.edge === true ? cfg | bit : cfg & ~bit);
      }
      case DG_PRI: {
        const s = spis[this.i]!;
        this.pc = DG_TARGET;
        return this.write(GIC_DIST_PRI + s.intid, 1, s.priority ?? 0xa0);
      }
      case DG_TARGET:
        this.pc = DG_ENABLE;
        return this.write(GIC_DIST_TARGET + spis[this.i]!.intid, 1, 1 << env.vcpu.idx);
      case DG_ENABLE: {
        const id = spis[this.i]!.intid;
        this.pc = DG_SPI_DONE;
        return this.write(GIC_DIST_ENABLE_SET + (id >> 5) * 4, 4, 1 << (id & 31));
      }
      case DG_SPI_DONE:
        this.i++;
        return this.spi();
      case DG_BOOTED:
        this.stats.booted = true;
        env.guest().irqMasked = false; // local_irq_enable
        this.pc = DG_IDLE;
        return this.yield_(trap(ESR_ELx_EC_WFx));
      default:
        return this.yield_(trap(ESR_ELx_EC_WFx));
    }
  }

  /** The next SPI's ICFGR read, or the end of the boot. */
  private spi(): Boundary {
    const spis = this.guest.opts.spis ?? [];
    if (this.i === spis.length) return this.booted();
    this.pc = DG_CFG;
    return this.call(guestMmioRead(this.env.guest(), this.base + GIC_DIST_CONFIG + (spis[this.i]!.intid >> 4) * 4, 4));
  }

  private write(off: number, len: number, v: number): Boundary {
    return this.call(guestMmioWrite(this.env.guest(), this.base + off, len, v));
  }

  private booted(): Boundary {
    this.pc = DG_BOOTED;
    return this.yield_(op(C_GUEST_INSN));
  }
}

/** The default guest's IRQ vector: GICV_IAR. */
const DV_IAR = 0;
/** IAR is back: count, then GICV_EOIR (or ERET for a spurious one). */
const DV_ACKED = 1;
/** The EOIR step. */
const DV_EOIR = 2;

/** DefaultGuest's IRQ vector as a frame: acknowledge one interrupt, count it, EOI it (EOImode 0), ERET. */
class DefaultGuestIrqVector extends Frame {
  private iar = 0;

  constructor(
    private readonly guest: DefaultGuest,
    private readonly env: GuestVcpuEnv,
    private readonly stats: DefaultGuestStats,
  ) {
    super();
  }

  protected step(): Boundary {
    const stats = this.stats;
    switch (this.pc) {
      case DV_IAR:
        this.pc = DV_ACKED;
        return this.yield_(op(C_GUEST_GICV_IAR));
      case DV_ACKED: {
        const iar = this.env.vif().readIar();
        const intid = iar & 0x3ff;
        if (intid >= 1020) {
          stats.spurious++;
          this.pc = DV_IAR;
          return this.yield_(eret());
        }
        stats.irqs++;
        stats.order.push(intid);
        stats.byIntid.set(intid, (stats.byIntid.get(intid) ?? 0) + 1);
        this.guest.opts.onIrq?.(this.env.vcpu, intid);
        this.iar = iar;
        this.pc = DV_EOIR;
        return this.yield_(op(C_GUEST_GICV_EOIR));
      }
      default:
        this.env.vif().writeEoir(this.iar);
        this.pc = DV_IAR;
        return this.yield_(eret());
    }
  }
}

export function defaultGuestFactory(opts: DefaultGuestOptions = {}): DefaultGuest {
  return new DefaultGuest(opts);
}
