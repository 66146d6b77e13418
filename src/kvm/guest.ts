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
import { eret, op, type TaskBody, type TaskGen, trap } from '../sim/task.js';
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

/** A guest MMIO write (data abort trap). */
export function* guestMmioWrite(g: GuestCpu, ipa: number, len: number, data: number): TaskGen<void> {
  g.mmio.isWrite = true;
  g.mmio.len = len;
  g.mmio.data = data >>> 0;
  yield trap(ESR_ELx_EC_DABT_LOW, ipa);
}

/** A guest MMIO read (data abort trap); returns the emulated value. */
export function* guestMmioRead(g: GuestCpu, ipa: number, len: number): TaskGen<number> {
  g.mmio.isWrite = false;
  g.mmio.len = len;
  g.mmio.data = 0;
  const v = yield trap(ESR_ELx_EC_DABT_LOW, ipa);
  return typeof v === 'number' ? v : 0;
}

/** WFI. */
export function* guestWfi(): TaskGen<void> {
  yield trap(ESR_ELx_EC_WFx);
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

  createGuest(env: GuestVcpuEnv): { thread: TaskGen<void>; irqVector: TaskGen<void> } {
    const stats = this.statsOf(env.vcpu.idx);
    return { thread: this.thread(env, stats), irqVector: this.irqVector(env, stats) };
  }

  private *thread(env: GuestVcpuEnv, stats: DefaultGuestStats): TaskGen<void> {
    yield op(C_GUEST_INSN);
    const vif = env.vif();
    vif.write(0x00, 1); // GICV_CTLR.Enable
    vif.write(0x04, 0xf8); // GICV_PMR
    const g = env.guest();
    g.irqMasked = true; // boot with interrupts masked, as a kernel does until its IRQ setup is done
    const base = env.distBase();
    if (base >= 0) {
      if (env.vcpu.idx === 0) yield* guestMmioWrite(g, base + GIC_DIST_CTRL, 4, 1);
      const me = 1 << env.vcpu.idx;
      for (const s of this.opts.spis ?? []) {
        const id = s.intid;
        const cfgOff = GIC_DIST_CONFIG + (id >> 4) * 4;
        const bit = 1 << ((id & 15) * 2 + 1);
        const cfg = yield* guestMmioRead(g, base + cfgOff, 4);
        yield* guestMmioWrite(g, base + cfgOff, 4, s.edge === true ? cfg | bit : cfg & ~bit);
        yield* guestMmioWrite(g, base + GIC_DIST_PRI + id, 1, s.priority ?? 0xa0);
        yield* guestMmioWrite(g, base + GIC_DIST_TARGET + id, 1, me);
        yield* guestMmioWrite(g, base + GIC_DIST_ENABLE_SET + (id >> 5) * 4, 4, 1 << (id & 31));
      }
    }
    yield op(C_GUEST_INSN);
    stats.booted = true;
    g.irqMasked = false; // local_irq_enable
    for (;;) yield* guestWfi();
  }

  private *irqVector(env: GuestVcpuEnv, stats: DefaultGuestStats): TaskGen<void> {
    for (;;) {
      yield op(C_GUEST_GICV_IAR);
      const vif = env.vif();
      const iar = vif.readIar();
      const intid = iar & 0x3ff;
      if (intid >= 1020) {
        stats.spurious++;
        yield eret();
        continue;
      }
      stats.irqs++;
      stats.order.push(intid);
      stats.byIntid.set(intid, (stats.byIntid.get(intid) ?? 0) + 1);
      this.opts.onIrq?.(env.vcpu, intid);
      yield op(C_GUEST_GICV_EOIR);
      env.vif().writeEoir(iar);
      yield eret();
    }
  }
}

export function defaultGuestFactory(opts: DefaultGuestOptions = {}): DefaultGuest {
  return new DefaultGuest(opts);
}
