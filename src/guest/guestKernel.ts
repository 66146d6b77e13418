/**
 * The guest kernel on each vCPU of a VM: a GICv2 driver, a driver per passed-through device line, an idle loop of
 * WFI traps, an optional CPU-bound workload, and scheduled interrupt retargeting. Each vCPU is two engine tasks —
 * the kernel thread and the IRQ vector — created by `engine.createGuestCpu(name, hostVcpuThread, thread, irqVector)`
 * (or `kernel.createGuestCpu(i, hostVcpuThread)`). Guest code never blocks on host objects: it traps (see
 * gicDriver.ts for the protocol).
 *
 * Boot: vCPU 0 initialises the distributor (trapped GICD accesses) then its CPU interface; the other vCPUs only
 * their CPU interface (GICV). Then the thread loops: run retargeting actions that are due; run workload steps; if
 * an action is due later, poll (the model has no guest timer, so a vCPU waiting for a scheduled action stays
 * running, like idle=poll); else idle: mask IRQs, WFI trap, unmask on re-entry (kernel/sched/idle.c do_idle →
 * cpu_do_idle runs WFI with IRQs masked; the pending vIRQ is taken when they are unmasked).
 */

import { ESR_ELx_EC_DABT_LOW, ESR_ELx_EC_HVC64, ESR_ELx_EC_WFx } from '../hw/esr.js';
import { GIC_DIST_CTR } from '../hw/gic/regs.js';
import type { PhysicalMemory } from '../hw/physMem.js';
import { defineCost } from '../sim/costs.js';
import { GuestCpu } from '../sim/cpu.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { declareStatistics } from '../sim/statistics.js';
import { current, eret, op, type Task, trap } from '../sim/task.js';
import { GuestDeviceDriver, type GuestDeviceLineOptions, guestWorkCost } from './deviceDriver.js';
import {
  type GicvProvider,
  type GuestEoiPolicy,
  GuestGicDriver,
  type GuestIrqchip,
  type GuestIrqHandler,
  type GuestSpiConfig,
  gicdRead,
  type VirqCompletionProbe,
} from './gicDriver.js';
import { type Gicv3VifProvider, GuestGicV3Driver } from './gicV3Driver.js';
import { type GuestIrqHook, GuestOps, type GuestProgram } from './guestOps.js';
import { asProbe, type Probe, type ProbeObject } from './guestProbe.js';
import type { GuestTraceHooks } from './guestTrace.js';
import { GuestItsDriver, type GuestItsOptions } from './itsDriver.js';

export const C_GUEST_IDLE_ENTER = defineCost(
  'guest_idle_enter',
  100,
  'guest do_idle → arch_cpu_idle → cpu_do_idle (local_irq_disable, dsb, wfi) before the WFI trap; estimate',
);
export const C_GUEST_IDLE_POLL = defineCost(
  'guest_idle_poll',
  1000,
  'one idle-poll iteration of a vCPU waiting for a scheduled action (model construct: no guest timer); estimate',
);

export const C_GUEST_TRAP_ISSUE = defineCost(
  'guest_trap_issue',
  0,
  'the trapping instruction (HVC, or the faulting load/store) before the exception: its cost is the exception itself, guest_exit',
);

/** CPU-bound guest work on a vCPU. */
export interface GuestWorkload {
  /** Cycles of one compute step (one atomic guest step; a physical or virtual IRQ is taken between steps). */
  stepCycles: number;
  /** Compute steps between two WFIs; default Infinity (never idle while work remains: the "vCPU running" case). */
  stepsPerWake?: number;
  /** Compute steps in all, after which the vCPU only idles; default Infinity. */
  totalSteps?: number;
}

/**
 * A microbenchmark loop on a vCPU (ISCA 2016 Table II / ASPLOS 2014 Table 3): `compute` steps of guest work, then
 * one trapping instruction, forever:
 * - `hvc`: HVC #0 (a null hypercall; KVM answers PSCI NOT_SUPPORTED in x0);
 * - `gicd-read`: a load from the emulated distributor (GICD_TYPER), completed by KVM's vGIC MMIO emulation in the
 *   kernel (the "interrupt controller trap" / ASPLOS "I/O Kernel" access);
 * - `mmio-write`: a 32-bit store to `ipa`, an address no memslot or in-kernel device backs, so KVM returns to the
 *   VMM with KVM_EXIT_MMIO (a doorbell the VMM completes; ASPLOS "I/O User").
 * The trap instruction's own step is the exception to EL2 (guest_exit); the round trip it reports is measured from
 * the start of that step to the first guest step after the re-entry.
 */
export interface GuestTrapLoop {
  kind: 'hvc' | 'gicd-read' | 'mmio-write';
  /** Cycles of one compute step between two traps. */
  stepCycles: number;
  /** Compute steps between two traps (≥ 0). */
  steps: number;
  /** `mmio-write`: the IPA written. */
  ipa?: number;
  /** The trap is issued at `at` (simulated cycles), by vCPU `vcpu` (a Probe: or an object with this method). */
  onTrap?: Probe<'onTrap', (at: number, vcpu: number) => void>;
  /** The guest runs again after the trap: cycles since the trap was issued (a Probe). */
  onRoundTrip?: Probe<'onRoundTrip', (cycles: number, vcpu: number) => void>;
}

/** A GuestTrapLoop as the guest keeps it: its probes in their object form. */
type TrapLoop = Omit<GuestTrapLoop, 'onTrap' | 'onRoundTrip'> & {
  readonly onTrap: ProbeObject<'onTrap', (at: number, vcpu: number) => void> | undefined;
  readonly onRoundTrip: ProbeObject<'onRoundTrip', (cycles: number, vcpu: number) => void> | undefined;
};

/** The guest writes ITARGETSR of `intid` to route it to vCPU `target`, from vCPU `by`'s thread, at time `at`. */
export interface GuestRetargetAction {
  /** Simulated time (cycles) from which the action is due. */
  at: number;
  intid: number;
  target: number;
  /** vCPU whose thread performs the write; default 0. */
  by?: number;
}

/**
 * An SPI (not a platform device line) the guest configures at boot, with a model handler or a hook of guest code
 * (the handler then runs `handlerCycles` of work, then the hook, and returns IRQ_HANDLED).
 */
export interface GuestExtraIrq extends GuestSpiConfig {
  handler?: GuestIrqHandler;
  hook?: GuestIrqHook;
  /** Cycles of handler work before the hook; default 0. */
  handlerCycles?: number;
}

/** IPA of the ucall doorbell: hw/arm/virt.c VIRT_MMIO (0x0a000000), which no memslot or in-kernel device backs. */
export const GUEST_UCALL_IPA = 0x0a000000;

export interface GuestKernelOptions {
  engine: Engine;
  /** The GIC whose virtual interfaces the vCPUs reach (a `Gic`); required unless `gicv3` is given. */
  gic?: GicvProvider;
  /**
   * A GICv3 guest (irq-gic-v3.c, gicV3Driver.ts): its vCPUs reach these ICV_* interfaces (a `Gicv3`) instead of `gic`'s
   * GICVs, and its redistributors at `gicrBase`. Guest programs (GuestOps) need the GICv2 driver.
   */
  gicv3?: Gicv3VifProvider;
  /** IPA of the first GICv3 redistributor; default 0x080a0000 (QEMU virt). */
  gicrBase?: number;
  /** GICv3 only: an ITS driver (irq-gic-v3-its.c) that maps these devices' MSIs to LPIs at boot. */
  its?: GuestItsOptions;
  vcpus: number;
  /** Name prefix of the vCPU tasks; default 'guest'. */
  name?: string;
  /** IPA of the emulated GICD; default 0x08000000 (QEMU virt). */
  gicdBase?: number;
  /** Virtual CPU interface EOImode; default 0. */
  eoiMode?: 0 | 1;
  /** 'never' / 'late': when the guest completes what it acknowledged (GuestGicDriverOptions.eoi). */
  eoi?: GuestEoiPolicy;
  /** Default GICD_IPRIORITYR of each configured SPI (0xa0); a line's own `priority` wins. */
  priority?: number;
  /** GICV_PMR at boot; default 0xf0. */
  pmr?: number;
  /** Guest code each vCPU runs after boot (one for all, or one per vCPU); then it idles. */
  program?: GuestProgram | readonly (GuestProgram | null | undefined)[];
  /** IPA of GuestOps.ucall; default GUEST_UCALL_IPA. */
  ucallIpa?: number;
  /** Passed-through device lines, each with a guest driver. */
  devices?: readonly GuestDeviceLineOptions[];
  /** Other SPIs with custom handlers. */
  irqs?: readonly GuestExtraIrq[];
  /** One workload for every vCPU, or one per vCPU (null/undefined = pure idle). */
  workload?: GuestWorkload | readonly (GuestWorkload | null | undefined)[];
  retarget?: readonly GuestRetargetAction[];
  /** A trap microbenchmark loop for every vCPU, or one per vCPU (replaces `workload` where set). */
  trapLoop?: GuestTrapLoop | readonly (GuestTrapLoop | null | undefined)[];
  /** Per acknowledged interrupt: the cycles of its GICV_IAR read + GICV_EOIR write (see gicDriver.ts; a Probe). */
  onVirqCompletion?: Probe<'onVirqCompletion', VirqCompletionProbe>;
  /** Per virtual IRQ exception: the vector is entered on vCPU `vcpu` at `at` (before the first IAR read; a Probe). */
  onVectorEntry?: Probe<'onVectorEntry', (at: number, vcpu: number) => void>;
}

/** A vCPU's counters: the workload's progress (computeSteps, loopTraps: the guest program reads them) and statistics. */
export class GuestVcpuStats {
  /** Virtual IRQ exceptions taken. */
  irqs = 0;
  /** WFI traps. */
  wfis = 0;
  computeSteps = 0;
  idlePolls = 0;
  /** ITARGETSR writes performed by this vCPU. */
  retargets = 0;
  /** Trap-loop iterations (HVC / MMIO traps issued by the microbenchmark loop). */
  loopTraps = 0;
}
declareStatistics(GuestVcpuStats, ['irqs', 'wfis', 'idlePolls', 'retargets']);

export interface GuestVcpu {
  readonly index: number;
  readonly name: string;
  /** Hand these two to engine.createGuestCpu (once). */
  readonly thread: Frame;
  readonly irqVector: Frame;
  readonly stats: GuestVcpuStats;
  /** Boot of this vCPU (distributor on vCPU 0, CPU interface on all) is complete. */
  booted: boolean;
  /** The engine context, once the vCPU has run (or was created through kernel.createGuestCpu). */
  guestCpu: GuestCpu | null;
}

/** What the guest kernel needs of KVM's GuestVcpuEnv (structurally compatible with src/kvm/guest.ts). */
export interface GuestFactoryEnv {
  readonly vcpu: { readonly idx: number };
  distBase?(): number;
  /** The VM whose RAM the guest's tables live in (KVM reads them with kvm_read_guest). */
  readonly vm?: { readonly guestMem: { readonly ram: PhysicalMemory } };
}

export interface GuestKernelStats {
  irqsPerVcpu: number[];
  wfisPerVcpu: number[];
  handledByIntid: Map<number, number>;
  spurious: number;
  unhandled: number;
  computeSteps: number;
  retargets: number;
}

/** The GuestCpu whose task is running (createGuestCpu makes it the mask context of both guest tasks). */
function currentGuest(): GuestCpu {
  const t = current();
  const g = t.maskCtx;
  if (!(g instanceof GuestCpu) || (g.thread !== t && g.irqTask !== t)) {
    throw new ModelError(`${t} runs guest code but is not a guest task of a GuestCpu`);
  }
  return g;
}

export class GuestKernel {
  readonly name: string;
  readonly engine: Engine;
  readonly driver: GuestIrqchip;
  readonly devices: GuestDeviceDriver[] = [];
  readonly vcpus: GuestVcpu[] = [];
  readonly spis: GuestSpiConfig[] = [];
  readonly workloads: (GuestWorkload | null)[] = [];
  readonly loops: (TrapLoop | null)[] = [];
  readonly programs: (GuestProgram | null)[] = [];
  /** The ITS driver (GICv3 with `its`), and the guest RAM it allocates from (known at the first KVM_RUN). */
  readonly its: GuestItsDriver | null = null;
  ram: PhysicalMemory | null = null;
  /** Per vCPU: the GuestOps its guest code uses, once its GuestCpu is known. */
  private readonly ops: (GuestOps | null)[] = [];
  private readonly ucallIpa: number;
  readonly onVectorEntry: ProbeObject<'onVectorEntry', (at: number, vcpu: number) => void> | undefined;
  /** Per vCPU: its retargeting actions in time order, and the index of the next one. */
  readonly actions: GuestRetargetAction[][] = [];
  readonly nextAction: Int32Array;
  /** Per vCPU: its frames were given to an engine (createGuestCpu / createGuest). */
  private readonly handedOut: Uint8Array;

  constructor(opts: GuestKernelOptions) {
    this.name = opts.name ?? 'guest';
    this.engine = opts.engine;
    const common = {
      engine: opts.engine,
      nrVcpus: opts.vcpus,
      gicdBase: opts.gicdBase,
      eoiMode: opts.eoiMode,
      priority: opts.priority,
      pmr: opts.pmr,
    };
    if (opts.gicv3 !== undefined) {
      if ((opts.eoi ?? 'always') !== 'always' || opts.onVirqCompletion !== undefined) {
        throw new ModelError('the GICv3 guest driver always completes its interrupts and has no completion probe');
      }
      const v3 = new GuestGicV3Driver({ ...common, gic: opts.gicv3, gicrBase: opts.gicrBase });
      this.driver = v3;
      if (opts.its !== undefined) this.its = new GuestItsDriver(v3, opts.its);
    } else {
      if (opts.its !== undefined) throw new ModelError('an ITS needs the GICv3 guest driver');
      if (opts.gic === undefined) throw new ModelError('a GICv2 guest needs the GIC whose GICVs its vCPUs reach');
      this.driver = new GuestGicDriver({
        ...common,
        gic: opts.gic,
        eoi: opts.eoi,
        onCompletion: asProbe('onVirqCompletion', opts.onVirqCompletion),
      });
    }
    this.onVectorEntry = asProbe('onVectorEntry', opts.onVectorEntry);
    for (const d of opts.devices ?? []) {
      const drv = new GuestDeviceDriver(opts.engine, d);
      this.driver.registerHandler(drv.intid, drv);
      this.devices.push(drv);
      this.spis.push({ intid: drv.intid, trigger: drv.trigger, target: drv.target, priority: d.priority });
    }
    this.ucallIpa = opts.ucallIpa ?? GUEST_UCALL_IPA;
    for (const x of opts.irqs ?? []) {
      this.driver.registerHandler(x.intid, this.extraHandler(x));
      this.spis.push({ intid: x.intid, trigger: x.trigger, target: x.target, priority: x.priority });
    }
    this.nextAction = new Int32Array(opts.vcpus);
    this.handedOut = new Uint8Array(opts.vcpus);
    for (let i = 0; i < opts.vcpus; i++) {
      const w = Array.isArray(opts.workload) ? opts.workload[i] : (opts.workload as GuestWorkload | undefined);
      if (w != null) {
        guestWorkCost(w.stepCycles);
        if (w.stepsPerWake !== undefined && !(w.stepsPerWake >= 1)) {
          throw new ModelError(`workload.stepsPerWake must be ≥ 1, got ${w.stepsPerWake}`);
        }
      }
      this.workloads.push(w ?? null);
      const l = Array.isArray(opts.trapLoop) ? opts.trapLoop[i] : (opts.trapLoop as GuestTrapLoop | undefined);
      if (l != null) {
        guestWorkCost(l.stepCycles);
        if (!Number.isInteger(l.steps) || l.steps < 0)
          throw new ModelError(`trapLoop.steps must be ≥ 0, got ${l.steps}`);
        if (l.kind === 'mmio-write' && l.ipa === undefined)
          throw new ModelError('an mmio-write trap loop needs an ipa');
      }
      this.loops.push(
        l == null
          ? null
          : { ...l, onTrap: asProbe('onTrap', l.onTrap), onRoundTrip: asProbe('onRoundTrip', l.onRoundTrip) },
      );
      const prog = Array.isArray(opts.program) ? opts.program[i] : (opts.program as GuestProgram | undefined);
      this.programs.push(prog ?? null);
      this.ops.push(null);
      this.actions.push([]);
      const stats = new GuestVcpuStats();
      const v: GuestVcpu = {
        index: i,
        name: `${this.name}/vcpu${i}`,
        thread: new GuestVcpuThread(this, i),
        irqVector: new GuestIrqVector(this, i),
        stats,
        booted: false,
        guestCpu: null,
      };
      this.vcpus.push(v);
    }
    for (const a of opts.retarget ?? []) this.scheduleRetarget(a);
  }

  /** All vCPUs have finished booting. */
  get booted(): boolean {
    return this.vcpus.every((v) => v.booted);
  }

  /** engine.createGuestCpu for vCPU `index`, entered by the host vCPU thread `host`. */
  createGuestCpu(index: number, host: Task): GuestCpu {
    const v = this.vcpus[index];
    if (v === undefined) throw new ModelError(`${this.name} has no vCPU ${index}`);
    if (v.guestCpu !== null) throw new ModelError(`${v.name} already has its GuestCpu`);
    if (this.handedOut[index]) throw new ModelError(`${v.name}: guest code already handed out`);
    this.handedOut[index] = 1;
    v.guestCpu = this.engine.createGuestCpu(v.name, host, v.thread, v.irqVector);
    return v.guestCpu;
  }

  /** Set (or clear) the guest's tracepoints on its GIC driver and its device drivers (guestTrace.ts). */
  setTrace(hooks: GuestTraceHooks | null): void {
    this.driver.trace = hooks;
    for (const d of this.devices) d.trace = hooks;
  }

  /** Add a retargeting action (kept in time order per performing vCPU; equal times in call order). */
  scheduleRetarget(a: GuestRetargetAction): void {
    const by = a.by ?? 0;
    const q = this.actions[by];
    if (q === undefined) throw new ModelError(`retarget by vCPU ${by}: ${this.name} has ${this.vcpus.length} vCPUs`);
    if (a.target < 0 || a.target >= this.vcpus.length || !Number.isInteger(a.target)) {
      throw new ModelError(`retarget of INTID ${a.intid} to vCPU ${a.target}: no such vCPU`);
    }
    let i = q.length;
    while (i > this.nextAction[by]! && q[i - 1]!.at > a.at) i--;
    q.splice(i, 0, { ...a, by });
  }

  stats(): GuestKernelStats {
    let spurious = 0;
    let unhandled = 0;
    for (const s of this.driver.cpuStats) {
      spurious += s.spurious;
      unhandled += s.unhandled;
    }
    return {
      irqsPerVcpu: this.vcpus.map((v) => v.stats.irqs),
      wfisPerVcpu: this.vcpus.map((v) => v.stats.wfis),
      handledByIntid: new Map(this.driver.handledByIntid),
      spurious,
      unhandled,
      computeSteps: this.vcpus.reduce((n, v) => n + v.stats.computeSteps, 0),
      retargets: this.vcpus.reduce((n, v) => n + v.stats.retargets, 0),
    };
  }

  /**
   * The GuestFactory shape KVM calls at a vCPU's first KVM_RUN (src/kvm/guest.ts): the frames of vCPU
   * `env.vcpu.idx`. If the VM has a distributor address (`env.distBase()` ≥ 0) it must be the guest's gicdBase.
   */
  createGuest(env: GuestFactoryEnv): { thread: Frame; irqVector: Frame } {
    const v = this.vcpus[env.vcpu.idx];
    if (v === undefined) throw new ModelError(`${this.name} has no vCPU ${env.vcpu.idx}`);
    if (this.handedOut[v.index]) throw new ModelError(`${v.name}: guest code already handed out`);
    const base = env.distBase?.() ?? -1;
    if (base >= 0 && base !== this.driver.gicdBase) {
      throw new ModelError(
        `${v.name}: the VM's GICD is at 0x${base.toString(16)}, the guest expects 0x${this.driver.gicdBase.toString(16)}`,
      );
    }
    this.handedOut[v.index] = 1;
    if (env.vm !== undefined) this.ram = env.vm.guestMem.ram;
    return { thread: v.thread, irqVector: v.irqVector };
  }

  /** The GuestOps of vCPU `index` (its guest code's view of the machine). */
  opsOf(index: number, g: GuestCpu): GuestOps {
    let o = this.ops[index] ?? null;
    if (o === null) {
      if (!(this.driver instanceof GuestGicDriver)) throw new ModelError('guest programs need the GICv2 driver');
      o = new GuestOps(this.driver, this.engine, index, g, this.ucallIpa);
      this.ops[index] = o;
    }
    return o;
  }

  /** The handler of an extra SPI: its own, or `handlerCycles` of work and then its hook. */
  private extraHandler(x: GuestExtraIrq): GuestIrqHandler {
    if (x.handler !== undefined) {
      if (x.hook !== undefined || x.handlerCycles !== undefined) {
        throw new ModelError(`guest INTID ${x.intid}: give a handler or a hook with handlerCycles, not both`);
      }
      return x.handler;
    }
    const work = x.handlerCycles === undefined ? -1 : guestWorkCost(x.handlerCycles);
    return new GuestExtraIrqHandler(this, x.intid, work, x.hook);
  }
}

/** Build the guest kernel of a VM: per vCPU the thread and IRQ vector frames, the drivers, and counters. */
export function createGuestKernel(opts: GuestKernelOptions): GuestKernel {
  return new GuestKernel(opts);
}

/** The thread's boot: vCPU 0 runs gic_dist_init first. */
const PC_BOOT = 0;
/** gic_cpu_init. */
const PC_CPU_INIT = 1;
/** Booted: the guest program, if any. */
const PC_BOOTED = 2;
/** The program returned: the trap loop or the idle loop. */
const PC_PROGRAM_DONE = 3;
/** Idle loop: a retargeting action's ITARGETSR write is done. */
const PC_RETARGETED = 4;
/** Idle loop: a workload compute step is done. */
const PC_COMPUTED = 5;
/** Idle loop: an idle-poll iteration is done. */
const PC_POLLED = 6;
/** do_idle → cpu_do_idle: IRQs masked, then WFI. */
const PC_IDLE_ENTERED = 7;
/** WFI returned (the vCPU re-entered): IRQs unmasked. */
const PC_WOKEN = 8;
/** Trap loop: a compute step is done. */
const PC_LOOP_COMPUTED = 9;
/** Trap loop: the trapping instruction's step is done; the trap itself. */
const PC_LOOP_TRAP = 10;
/** Trap loop: the trap returned (the round trip is over). */
const PC_LOOP_RETURNED = 11;
/** vCPU 0: gic_cpu_init returned; its_init and its_cpu_init next (an ITS driver). */
const PC_ITS_INIT = 12;

/**
 * The kernel thread of a guest vCPU (a frame): boot, the program, then the idle loop (kernel/sched/idle.c do_idle)
 * with the scheduled retargeting and the workload, or a GuestTrapLoop.
 */
class GuestVcpuThread extends Frame {
  private g: GuestCpu | null = null;
  /** The workload's (or trap loop's) step cost, steps per wake-up and in all, and the steps since the last WFI. */
  private workCost = 0;
  private perWake = Number.POSITIVE_INFINITY;
  private total = Number.POSITIVE_INFINITY;
  private sinceWake = 0;
  /** Trap loop: compute steps done in this iteration, and when the trap was issued. */
  private i = 0;
  private at = 0;

  constructor(
    private readonly k: GuestKernel,
    private readonly index: number,
  ) {
    super();
  }

  private get stats(): GuestVcpuStats {
    return this.k.vcpus[this.index]!.stats;
  }

  protected step(): Boundary {
    const k = this.k;
    const index = this.index;
    switch (this.pc) {
      case PC_BOOT: {
        const g = currentGuest();
        this.g = g;
        k.vcpus[index]!.guestCpu = g;
        if (index === 0) {
          this.pc = PC_CPU_INIT;
          return this.call(k.driver.distInit(g, k.spis));
        }
        return this.cpuInit();
      }
      case PC_CPU_INIT:
        return this.cpuInit();
      case PC_ITS_INIT:
        return this.itsInit();
      case PC_BOOTED: {
        k.vcpus[index]!.booted = true;
        const prog = k.programs[index] ?? null;
        if (prog === null) return this.programDone();
        this.pc = PC_PROGRAM_DONE;
        return this.call(prog(k.opsOf(index, this.g!)));
      }
      case PC_PROGRAM_DONE:
        return this.programDone();
      case PC_RETARGETED:
        this.stats.retargets++;
        return this.idleLoop();
      case PC_COMPUTED:
        this.stats.computeSteps++;
        this.sinceWake++;
        return this.idleLoop();
      case PC_POLLED:
        this.stats.idlePolls++;
        return this.idleLoop();
      case PC_IDLE_ENTERED:
        this.g!.irqMasked = true;
        this.stats.wfis++;
        this.pc = PC_WOKEN;
        return this.yield_(trap(ESR_ELx_EC_WFx));
      case PC_WOKEN:
        this.g!.irqMasked = false;
        this.sinceWake = 0;
        return this.idleLoop();
      case PC_LOOP_COMPUTED:
        this.stats.computeSteps++;
        this.i++;
        return this.trapLoop();
      case PC_LOOP_TRAP:
        return this.loopTrap();
      default: {
        // PC_LOOP_RETURNED: the first guest step after the re-entry: the round trip is over
        const l = k.loops[index]!;
        l.onRoundTrip?.onRoundTrip(k.engine.now - this.at, index);
        this.i = 0;
        return this.trapLoop();
      }
    }
  }

  private cpuInit(): Boundary {
    this.pc = this.index === 0 && this.k.its !== null ? PC_ITS_INIT : PC_BOOTED;
    return this.call(this.k.driver.cpuInit(this.g!, this.index));
  }

  /** irq-gic-v3.c gic_init_bases → its_init, after the boot CPU's gic_cpu_init. */
  private itsInit(): Boundary {
    const k = this.k;
    if (k.ram === null) throw new ModelError(`${k.name}: the ITS driver needs the VM's RAM (createGuest's env.vm)`);
    this.pc = PC_BOOTED;
    return this.call(k.its!.init(this.g!, k.ram));
  }

  private programDone(): Boundary {
    const k = this.k;
    const loop = k.loops[this.index] ?? null;
    if (loop !== null) {
      this.workCost = guestWorkCost(loop.stepCycles);
      this.i = 0;
      return this.trapLoop();
    }
    const w = k.workloads[this.index] ?? null;
    this.workCost = w !== null ? guestWorkCost(w.stepCycles) : 0;
    this.perWake = w?.stepsPerWake ?? Number.POSITIVE_INFINITY;
    this.total = w?.totalSteps ?? Number.POSITIVE_INFINITY;
    return this.idleLoop();
  }

  /** One pass of the idle loop: due retargeting actions, a workload step, an idle poll, or WFI. */
  private idleLoop(): Boundary {
    const k = this.k;
    const index = this.index;
    const q = k.actions[index]!;
    const next = k.nextAction[index]!;
    if (next < q.length && q[next]!.at <= k.engine.now) {
      const a = q[k.nextAction[index]!++]!;
      this.pc = PC_RETARGETED;
      return this.call(k.driver.setAffinity(this.g!, a.intid, a.target));
    }
    const stats = this.stats;
    if (k.workloads[index] != null && stats.computeSteps < this.total && this.sinceWake < this.perWake) {
      this.pc = PC_COMPUTED;
      return this.yield_(op(this.workCost));
    }
    if (next < q.length) {
      this.pc = PC_POLLED;
      return this.yield_(op(C_GUEST_IDLE_POLL));
    }
    this.pc = PC_IDLE_ENTERED;
    return this.yield_(op(C_GUEST_IDLE_ENTER));
  }

  /** The microbenchmark loop of GuestTrapLoop (never returns): `steps` compute steps, then the trap. */
  private trapLoop(): Boundary {
    const l = this.k.loops[this.index]!;
    if (this.i < l.steps) {
      this.pc = PC_LOOP_COMPUTED;
      return this.yield_(op(this.workCost));
    }
    // The step that ends in a trap is charged as the exception to EL2 (guest_exit), whatever op preceded it: a
    // zero-cost step here keeps the last compute step's cycles.
    this.pc = PC_LOOP_TRAP;
    return this.yield_(op(C_GUEST_TRAP_ISSUE));
  }

  private loopTrap(): Boundary {
    const k = this.k;
    const l = k.loops[this.index]!;
    const g = this.g!;
    const stats = this.stats;
    this.at = k.engine.now;
    stats.loopTraps++;
    l.onTrap?.onTrap(this.at, this.index);
    this.pc = PC_LOOP_RETURNED;
    switch (l.kind) {
      case 'hvc':
        return this.yield_(trap(ESR_ELx_EC_HVC64)); // HVC #0; x0 comes back as PSCI NOT_SUPPORTED
      case 'gicd-read':
        return this.call(gicdRead(g, k.driver.gicdBase + GIC_DIST_CTR, 4));
      default: // 'mmio-write'
        g.mmio.isWrite = true;
        g.mmio.len = 4;
        g.mmio.data = stats.loopTraps >>> 0;
        return this.yield_(trap(ESR_ELx_EC_DABT_LOW, l.ipa!));
    }
  }
}

/** The vector's entry: onVectorEntry, then gic_handle_irq. */
const PC_VECTOR = 0;
/** gic_handle_irq returned: exception return. */
const PC_ERET = 1;

/** The IRQ vector of a guest vCPU (a frame): el1_interrupt → gic_handle_irq, then ERET, per virtual IRQ exception. */
class GuestIrqVector extends Frame {
  private g: GuestCpu | null = null;

  constructor(
    private readonly k: GuestKernel,
    private readonly index: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const k = this.k;
    if (this.pc === PC_ERET) {
      this.pc = PC_VECTOR;
      return this.yield_(eret());
    }
    if (this.g === null) this.g = currentGuest();
    k.onVectorEntry?.onVectorEntry(k.engine.now, this.index);
    k.vcpus[this.index]!.stats.irqs++;
    this.pc = PC_ERET;
    return this.call(k.driver.handleIrq(this.g, this.index));
  }
}

/** The handler of an extra SPI without a handler of its own: `handlerCycles` of work, then its hook. */
class GuestExtraIrqHandler implements GuestIrqHandler {
  readonly name: string;

  constructor(
    readonly kernel: GuestKernel,
    readonly intid: number,
    /** Cost id of the work, or -1 for none. */
    readonly work: number,
    readonly hook: GuestIrqHook | undefined,
  ) {
    this.name = `guest-irq${intid}`;
  }

  handle(g: GuestCpu, vcpu: number): Frame<boolean> {
    return new GuestExtraIrqHandle(this, g, vcpu);
  }
}

/** The handler's work step. */
const PC_WORK = 0;
/** The hook. */
const PC_HOOK = 1;
/** The hook returned: IRQ_HANDLED. */
const PC_HOOKED = 2;

/** GuestExtraIrqHandler.handle as a frame. */
class GuestExtraIrqHandle extends Frame<boolean> {
  constructor(
    private readonly h: GuestExtraIrqHandler,
    private readonly g: GuestCpu,
    private readonly vcpu: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const h = this.h;
    switch (this.pc) {
      case PC_WORK:
        this.pc = PC_HOOK;
        if (h.work >= 0) return this.yield_(op(h.work));
        return this.hook();
      case PC_HOOK:
        return this.hook();
      default:
        return this.return_(true);
    }
  }

  private hook(): Boundary {
    const h = this.h;
    if (h.hook === undefined) return this.return_(true);
    this.pc = PC_HOOKED;
    return this.call(h.hook(h.kernel.opsOf(this.vcpu, this.g), h.intid));
  }
}
