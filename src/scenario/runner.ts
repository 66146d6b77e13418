/**
 * The scenario runner (the `RunScenario` of src/cli/runnerApi.ts): for each requested mode it builds the machine
 * (createHost), a guest kernel per VM, and a VMM process that drives everything through the ioctl ABI the way QEMU
 * does (src/scenario/vmm.ts); it runs the VMM plan at its times and events, raises the device IRQs from engine
 * timers, measures, tears the VM down, lets the machine quiesce and checks the invariants.
 *
 * Timeline of one mode run:
 *   t=0   workload timers armed (absolute times); the VMM builds each VM (KVM_CREATE_VM, vGIC, vCPUs) and runs the
 *         leading steps of the plan (those without `at`/`after`: open-device, irqfd, assign) — as QEMU realizes its
 *         devices before the vCPUs run; then one thread per vCPU ("CPU n/KVM", pinned) loops on KVM_RUN.
 *   ...   the remaining steps at their times / events; the guest boots (trapped GICD writes) then runs its workload.
 *   measurement window: from the moment every guest has booted to `duration` — exits, host cycles and counters are
 *         the differences over that window, so boot MMIO exits and teardown do not pollute the per-IRQ figures.
 *   duration: workloads have stopped; the VMM destroys each VM (stop vCPUs with a signal, deassign, irqfds off,
 *         close device, group, container, kvm-vfio, vCPU, vGIC and VM fds) and exits; the machine settles.
 *
 * Accounting per line: a raise is `coalesced` when the device condition was still set (one pending state per
 * INTID), `orphaned` when no VM owned the line (before its irqfd step, after its device was closed), else
 * outstanding until a guest handler entry that finds the condition set delivers it. A delivery with nothing
 * outstanding is a duplicate — except one answering an orphaned raise that a late irqfd still delivered, which
 * turns that orphan into a delivery.
 *
 * Host cycles: a step observer notes, before a CPU agent steps, whether it is in guest mode or about to run
 * its idle task, and after the step adds its cost (readyAt − now) to the host total unless it was a guest
 * step that stayed in the guest, or an idle step.
 */
import { ErrnoError, errno } from '../abi/errno.js';
import { KVM_EXIT_MMIO, KVM_RUN, VGIC_MAX_NR_IRQS } from '../abi/kvm.js';
import { kvmRun } from '../abi/kvmStructs.js';
import {
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  vfioGroupStatus,
} from '../abi/vfio.js';
import { guestWorkCost } from '../guest/deviceDriver.js';
import type { GuestIrqHandler } from '../guest/gicDriver.js';
import type { GuestExtraIrq, GuestTrapLoop, GuestWorkload } from '../guest/guestKernel.js';
import { GuestKernel } from '../guest/guestKernel.js';
import { gicRouteSpi, hostGicV2 } from '../host/irq/boot.js';
import type { IrqDesc, IrqReturn } from '../host/irq/irqDesc.js';
import type { Process, UThread } from '../host/process.js';
import type { PlatformDevice } from '../hw/platformDevice.js';
import type { GuestFactory, GuestVcpuEnv } from '../kvm/guest.js';
import { kvmRunAddress } from '../kvm/vcpu.js';
import type { KvmVm } from '../kvm/vm.js';
import { createHost, type Host } from '../machine.js';
import { costDefs } from '../sim/costs.js';
import type { Engine, StepObserver } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { COST_PROFILES, resolveCosts } from '../sim/profiles.js';
import { currentOrNull, op, type TaskGen } from '../sim/task.js';
import { writeChromeJson } from '../trace/chromeJsonWriter.js';
import { writeText } from '../trace/textWriter.js';
import { Tracer } from '../trace/tracer.js';
import { HostTrace } from './hostTrace.js';
import { type ExitReason, type Metrics, MetricsCollector, PROBE_NAMES, type ProbeName } from './metrics.js';
import type { InvariantViolation, ModeRun, RunOptions, RunResult, TraceOutput } from './runnerApi.js';
import type { Mode, Scenario, ScenarioEvent, ScenarioStep } from './schema.js';
import { BOUND_FD_RE, FDREF_RE, stepsForMode } from './schema.js';
import {
  assignIrq,
  createKvmVfio,
  createQemuVm,
  deassignIrq,
  type IrqfdWiring,
  kvmVfioGroupAdd,
  kvmVfioGroupDel,
  kvmVfioSupported,
  type QemuVm,
  RawIoctlError,
  rawIoctl,
  signalThread,
  unwireIrqfd,
  wireIrqfd,
} from './vmm.js';

/** The invariant id of a raw `ioctl` step whose outcome is not its `expect`. */
export const IOCTL_EXPECTATION = 'ioctl-expect';

/** Cycles of one compute step of a `busy` / `{compute}` guest: the granularity at which it takes interrupts. */
export const GUEST_COMPUTE_QUANTUM = 200;
/** Trace ring capacity (records) per mode run. */
const TRACE_CAPACITY = 1 << 18;
/** Engine steps between two progress reports. */
const PROGRESS_EVERY = 1 << 16;
/**
 * IPA of the doorbell an `{mmio: {exit: user}}` guest writes: QEMU virt's first virtio-mmio transport
 * (hw/arm/virt.c VIRT_MMIO = 0x0a000000). No memslot or in-kernel device backs it, so KVM exits with KVM_EXIT_MMIO.
 */
export const GUEST_DOORBELL_IPA = 0x0a00_0000;

/**
 * Tests' view into a run (the CLI passes none): the machine of each mode once built, and the machine after each VMM
 * step, so a test can assert on state the metrics do not report (disable depth, vGIC state, queue lengths).
 */
export interface RunHooks {
  onHost?(host: Host, mode: Mode): void;
  onGuest?(guest: GuestKernel, vm: string, mode: Mode): void;
  afterStep?(step: ScenarioStep, host: Host, mode: Mode): void;
}

export function runScenario(s: Scenario, opts: RunOptions, hooks: RunHooks = {}): RunResult {
  const notes: string[] = [];
  const runs: ModeRun[] = [];
  opts.modes.forEach((mode, i) => {
    const report = (f: number) => opts.onProgress?.((i + Math.min(1, Math.max(0, f))) / opts.modes.length);
    runs.push(new ModeRunner(s, mode, opts, report, notes, hooks).run());
  });
  opts.onProgress?.(1);
  return { runs, notes: [...new Set(notes)] };
}

// ---------------------------------------------------------------------------------------------------------------

interface LineState {
  /** Position in ModeRunner.lines (the metrics' line index). */
  readonly idx: number;
  readonly device: string;
  readonly index: number;
  readonly intid: number;
  readonly hw: PlatformDevice;
  readonly desc: IrqDesc;
  /** A VM's irqfd carries the line (set by the irqfd step, cleared by closing the device / destroy). */
  owned: boolean;
  outstanding: number;
  orphanPending: number;
  lastAssertAt: number;
  /** Trace sequence number of the current raise. */
  seq: number;
  raisedN: number;
  deliveredN: number;
  deactivatedN: number;
  /** `seq` of the raise the last counted deactivation answered. */
  deactSeq: number;
  /** `seq` of the raise the last counted re-arm (deactivated, and unmasked if masked) answered. */
  rearmSeq: number;
  /** The pending self-deassert timer (hold), -1 if none. */
  holdTimer: number;
  /** A `via: eventfd` workload drives this IRQ: the I/O backend writes the irqfd, the physical line stays low. */
  viaEventfd: boolean;
}

interface VmState {
  readonly name: string;
  readonly index: number;
  readonly spec: Scenario['vms'][number];
  readonly fds: QemuVm;
  readonly kvmVm: KvmVm;
  readonly guest: GuestKernel;
  kvmVfio: number;
  threads: UThread[];
  readonly stop: { v: boolean };
  destroyed: boolean;
  vmClosed: boolean;
  /** Per vCPU: when its trap loop issued its last trap (cycles), -1 if none is outstanding. */
  readonly trapAt: number[];
  /** Per vCPU: when it last entered its virtual IRQ vector (cycles). */
  readonly vectorAt: number[];
  /** Kernel-handled MMIO round trips (GICD read loop): count and sum of cycles, for a note. */
  mmioKernel: { n: number; sum: number };
}

interface OpenDevice {
  readonly vm: string;
  readonly name: string;
  container: number;
  group: number;
  device: number;
  groupAdded: boolean;
}

interface Wiring extends IrqfdWiring {
  readonly vm: string;
  readonly device: string;
  readonly index: number;
}

interface Snapshot {
  /** Simulated time of the snapshot. */
  at: number;
  exits: Record<ExitReason, number>;
  host: number;
  hostByCpu: number[];
  signals: number;
  unmasks: number;
  resamples: number;
  maint: number;
  inject: number;
  lrOverflows: number;
}

/** Names of the checkInvariants messages → stable invariant ids. */
function invariantId(msg: string): string {
  if (msg.startsWith('leak:')) return 'refs-dropped';
  if (msg.includes('left active')) return 'no-active-after-teardown';
  if (msg.startsWith('genirq WARN')) return 'genirq-warn';
  if (msg.startsWith('bad IRQ')) return 'no-bad-irq';
  if (msg.startsWith('GIC:')) return 'gic-predictable';
  if (msg.startsWith('vGIC:')) return 'hw-lr-names-active-intid';
  if (msg.includes('VFIO masked but')) return 'disable-depth-balanced';
  return 'teardown-complete';
}

class ModeRunner implements StepObserver {
  private readonly host: Host;
  private readonly engine: Engine;
  private readonly p: Process;
  private readonly tracer: Tracer | null;
  private readonly c: MetricsCollector;
  private readonly lines: LineState[] = [];
  private readonly lineByName = new Map<string, LineState>();
  private readonly lineByIntid = new Map<number, LineState>();
  /** The tracepoints, when this run traces. */
  private ht: HostTrace | null = null;
  private readonly vms: VmState[] = [];
  private readonly opened: OpenDevice[] = [];
  private readonly wirings: Wiring[] = [];
  /** The fds raw ioctl steps created, by their `as` name. */
  private readonly boundFds = new Map<string, number>();
  private readonly assigned: { vm: string; device: string; index: number; gsi: number }[] = [];
  private readonly violations: InvariantViolation[] = [];
  private readonly doneSteps = new Set<string>();
  private readonly listeners: { ev: ScenarioEvent; fn: () => void; fired: boolean }[] = [];
  // host-cycle accounting
  private readonly preGuest: Uint8Array;
  private readonly preIdle: Uint8Array;
  private hostCycles = 0;
  private readonly hostByCpu: Float64Array;
  private windowStart: Snapshot | null = null;
  private windowEnd: Snapshot | null = null;
  private maint = 0;
  private injections = 0;
  private lrOverflows = 0;
  private nextProgress = PROGRESS_EVERY;
  private t0 = 0;
  private seq = 0;
  private kvmVfioOk = true;
  private readonly maintIrq: number;
  /** The VMM's I/O thread (the backend of `via: eventfd` workloads), created on first use. */
  private ioThread: UThread | null = null;
  /** User address of the __u64 1 the I/O thread writes to an eventfd. */
  private ioBuf = -1;
  private readonly traceFormat: 'text' | 'perfetto';

  constructor(
    private readonly s: Scenario,
    private readonly mode: Mode,
    opts: RunOptions,
    private readonly progress: (f: number) => void,
    private readonly notes: string[],
    private readonly hooks: RunHooks = {},
  ) {
    const known = new Set(costDefs().map((d) => d.name));
    const rc = resolveCosts(s.host.costProfile, s.host.costs, (n) => known.has(n));
    if (rc.skipped.length > 0)
      notes.push(
        `cost profile '${s.host.costProfile}' names costs the model does not define: ${rc.skipped.join(', ')}`,
      );
    this.host = createHost({
      cpus: s.host.cpus,
      seed: s.seed,
      hz: s.host.hz,
      costs: rc.costs,
      gic: s.host.gic.version,
      nrIrqs: s.host.gic.nrIrqs,
      nrLrs: s.host.gic.nrLrs,
      devices: s.devices.map((d) => ({
        name: d.name,
        iommuGroup: d.iommuGroup,
        reset: d.reset,
        irqs: d.irqs.map((i) => ({ intid: i.intid, trigger: i.trigger })),
      })),
    });
    this.engine = this.host.engine;
    this.maintIrq = this.host.kvm.maintenanceIrq;
    this.preGuest = new Uint8Array(this.engine.cpus.length);
    this.preIdle = new Uint8Array(this.engine.cpus.length);
    this.hostByCpu = new Float64Array(this.engine.cpus.length);
    this.traceFormat = opts.trace ?? 'text';
    this.tracer = opts.trace !== undefined ? new Tracer({ capacity: TRACE_CAPACITY, time: this.engine }) : null;
    const lineSpecs: { device: string; index: number; intid: number }[] = [];
    for (const d of this.host.devices) {
      d.spec.irqs.forEach((irq, index) => {
        const l: LineState = {
          idx: this.lines.length,
          device: d.spec.name,
          index,
          intid: irq.intid,
          hw: d.hw,
          desc: d.descs[index]!,
          owned: false,
          outstanding: 0,
          orphanPending: 0,
          lastAssertAt: 0,
          seq: 0,
          raisedN: 0,
          deliveredN: 0,
          deactivatedN: 0,
          deactSeq: 0,
          rearmSeq: 0,
          holdTimer: -1,
          viaEventfd: s.workloads.some((w) => w.via === 'eventfd' && w.device === d.spec.name && w.index === index),
        };
        this.lines.push(l);
        this.lineByIntid.set(irq.intid, l);
        this.lineByName.set(`${l.device}/${index}`, l);
        lineSpecs.push({ device: l.device, index, intid: irq.intid });
      });
    }
    this.c = new MetricsCollector(mode, s.host.hz, lineSpecs);
    this.engine.observer = this;
    this.ht = this.tracer !== null ? new HostTrace(this.tracer, this.host) : null;
    if (this.ht !== null) for (const l of this.lines) this.ht.addLine(l, l.desc.irq);
    this.installHooks();
    this.ht?.installChain();
    this.hookUnmask();
    this.p = this.host.process();
    this.host.kvm.guestFactory = this.guestFactory();
    hooks.onHost?.(this.host, mode);
  }

  // ---- StepObserver: host-cycle accounting and progress (an observer, not a scheduler wrapper, so the engine's
  // timed loop keeps its shortcut) --------------------------------------------------------------------------------

  beforeStep(engine: Engine, a: number): void {
    if (a < engine.cpus.length) {
      const cpu = engine.cpus[a]!;
      this.preGuest[a] = cpu.guest !== null ? 1 : 0;
      const takesIrq = cpu.irqLine && !cpu.irqMasked && !cpu.inIrq && cpu.irqTask !== null;
      this.preIdle[a] = cpu.guest === null && !cpu.inIrq && !takesIrq && cpu.current === cpu.idle ? 1 : 0;
    }
  }

  onStep(engine: Engine, agent: number): void {
    if (agent < engine.cpus.length) {
      const cpu = engine.cpus[agent]!;
      const stayedInGuest = this.preGuest[agent] === 1 && cpu.guest !== null;
      if (!stayedInGuest && this.preIdle[agent] === 0) {
        const cost = cpu.readyAt - engine.now;
        this.hostCycles += cost;
        this.hostByCpu[agent]! += cost;
      }
    }
    if (engine.steps >= this.nextProgress) {
      this.nextProgress = engine.steps + PROGRESS_EVERY;
      this.progress((engine.now - this.t0) / Math.max(1, this.s.duration));
    }
  }

  // ---- hooks: counters and trace -----------------------------------------------------------------------------

  private installHooks(): void {
    const ht = this.ht;
    const engine = this.engine;
    const host = this.host;
    host.irq.genirq.trace = {
      handlerEntry: (desc: IrqDesc, name: string) => {
        if (desc.irq === this.maintIrq) this.maint++;
        ht?.handlerEntry(desc, name);
      },
      handlerExit: (desc: IrqDesc, ret: IrqReturn) => ht?.handlerExit(desc, ret),
    };
    host.kvm.trace = {
      kvmEntry: (v) => {
        const vc = v.vgicCpu;
        const nrLr = v.vm.vgic?.nrLr ?? 0;
        if (vc !== null && nrLr > 0 && vc.apCount > nrLr) this.lrOverflows++;
        ht?.kvmEntry(v);
      },
      kvmExit: (v, type, ec) => ht?.kvmExit(v, type, ec),
      kvmUserspaceExit: (v, reason, err) => ht?.kvmUserspaceExit(v, reason, err),
      kvmSetIrq: (gsi, level, src) => {
        if (level !== 0) this.injections++;
        ht?.kvmSetIrq(gsi, level, src);
      },
    };
    if (ht !== null) {
      for (const d of host.devices) {
        d.hw.onLineChange = (_dev, index, level) => ht.lineChange(d.spec.name, d.spec.irqs[index]!.intid, level);
      }
    }
    // physical deactivation: every path (host EOIR/DIR, guest EOI on a HW list register) ends in
    // GicDistributor.deactivate, which reports it to onDeactivate.
    host.irq.gic.distributor.onDeactivate = (intid, cpu) => {
      ht?.deactivate(intid, cpu); // every INTID: an SGI's or PPI's DIR too, or its active slice never ends
      const l = this.lineByIntid.get(intid);
      if (l === undefined) return;
      // counted once per raise: the lazy-disable path of handle_fasteoi_irq activates and deactivates a
      // still-asserted level line once more, masked, after the unmask-less DIR (traced, not counted)
      if (l.deactSeq !== l.seq) {
        l.deactSeq = l.seq;
        l.deactivatedN++;
        this.c.deactivated(engine.now - l.lastAssertAt);
        // re-armed now unless the host IRQ is disabled (the normal level path's automask): then at the VFIO unmask
        if (l.desc.depth === 0) this.rearmed(l);
        this.notify();
      }
    };
  }

  /** vfio_platform_unmask re-enables a line the normal path masked: the re-arm of a raise already deactivated. */
  private hookUnmask(): void {
    const chain = this.host.kernel.trace;
    const byIrq = new Map(this.lines.map((l) => [l.desc.irq, l]));
    this.host.kernel.trace = {
      ...chain,
      vfioUnmask: (irq) => {
        const l = byIrq.get(irq);
        if (l !== undefined && l.deactSeq === l.seq && l.rearmSeq !== l.seq && l.desc.depth === 0) this.rearmed(l);
        chain?.vfioUnmask?.(irq);
      },
    };
  }

  private rearmed(l: LineState): void {
    l.rearmSeq = l.seq;
    this.c.rearmed(this.engine.now - l.lastAssertAt);
  }

  // ---- guests ------------------------------------------------------------------------------------------------

  private guestWorkload(w: Scenario['vms'][number]['guest']['workload']): GuestWorkload | undefined {
    if (w === 'idle') return undefined;
    if (w === 'busy') return { stepCycles: GUEST_COMPUTE_QUANTUM };
    if ('compute' in w) {
      const steps = Math.max(1, Math.round(w.compute / GUEST_COMPUTE_QUANTUM));
      return { stepCycles: Math.max(1, Math.round(w.compute / steps)), stepsPerWake: steps };
    }
    return undefined; // hvc / mmio: a trap loop (guestTrapLoop)
  }

  /** Inside the measurement window (guests booted, workloads not yet stopped): probes record only here. */
  private measuring(): boolean {
    return this.windowStart !== null && this.windowEnd === null;
  }

  private probe(name: ProbeName, cycles: number): void {
    if (this.measuring()) this.c.probe(name, cycles);
  }

  /**
   * `{hvc: {every}}` and `{mmio: {every, exit}}`: `every` cycles of guest compute (in GUEST_COMPUTE_QUANTUM steps),
   * then one trap, in a loop on every vCPU of the VM.
   *   hvc         → probe `hypercall`: HVC issued → the guest runs the next instruction (a null hypercall round trip);
   *   mmio kernel → a GICD_TYPER read emulated by KVM's vGIC (interrupt-controller trap); round trips are reported
   *                 in a note (Metrics has no probe for them);
   *   mmio user   → a doorbell store at GUEST_DOORBELL_IPA: KVM_EXIT_MMIO; probe `ioLatencyOut` is recorded by
   *                 the vCPU thread's KVM_RUN loop (vcpuLoop) when it sees the exit.
   */
  private guestTrapLoop(v: () => VmState, w: Scenario['vms'][number]['guest']['workload']): GuestTrapLoop | undefined {
    if (typeof w === 'string' || 'compute' in w) return undefined;
    const every = 'hvc' in w ? w.hvc.every : w.mmio.every;
    const steps = every > 0 ? Math.max(1, Math.round(every / GUEST_COMPUTE_QUANTUM)) : 0;
    const stepCycles = steps > 0 ? Math.max(1, Math.round(every / steps)) : 0;
    if ('hvc' in w) {
      return { kind: 'hvc', steps, stepCycles, onRoundTrip: (cycles) => this.probe('hypercall', cycles) };
    }
    if (w.mmio.exit === 'kernel') {
      return {
        kind: 'gicd-read',
        steps,
        stepCycles,
        onRoundTrip: (cycles) => {
          if (!this.measuring()) return;
          const m = v().mmioKernel;
          m.n++;
          m.sum += cycles;
        },
      };
    }
    return {
      kind: 'mmio-write',
      steps,
      stepCycles,
      ipa: GUEST_DOORBELL_IPA,
      onTrap: (at, vcpu) => {
        v().trapAt[vcpu] = at;
      },
    };
  }

  /**
   * The guest handler of an IRQ driven by a `via: eventfd` workload: the I/O backend signalled the irqfd, so there is
   * no device status register to read (the physical line never rose); the handler serves one event per entry.
   * Probe `ioLatencyIn` = the backend's write(2) starts → this vCPU entered its IRQ vector for the vIRQ.
   */
  private backendHandler(l: LineState, handlerCycles: number, vmIndex: number): GuestIrqHandler {
    const work = guestWorkCost(handlerCycles);
    const engine = this.engine;
    const self = this;
    return {
      name: `${l.device}.${l.index}.backend`,
      *handle(_g, vcpu) {
        const vectorAt = self.vms[vmIndex]!.vectorAt[vcpu] ?? engine.now;
        if (l.outstanding > 0 || l.orphanPending > 0) self.probe('ioLatencyIn', vectorAt - l.lastAssertAt);
        self.delivered(l, engine.now - l.lastAssertAt, vcpu, vmIndex);
        if (handlerCycles > 0) yield op(work);
        return true;
      },
    };
  }

  private buildGuest(spec: Scenario['vms'][number], index: number): GuestKernel {
    const steps = stepsForMode(this.s, this.mode).filter((x) => x.step === 'irqfd' && x.vm === spec.name);
    const irqs: GuestExtraIrq[] = [];
    for (const st of steps) {
      if (st.step !== 'irqfd') continue;
      const l = this.line(st.device, st.index);
      if (!l.viaEventfd) continue;
      if (this.s.workloads.some((w) => w.device === l.device && w.index === l.index && w.via !== 'eventfd'))
        this.notes.push(
          `${l.device}/${l.index}: line and eventfd workloads on one IRQ: the guest serves it as eventfd`,
        );
      const trigger = this.deviceIrqSpec(l).trigger;
      irqs.push({
        intid: 32 + st.gsi!,
        trigger,
        target: 0,
        handler: this.backendHandler(l, spec.guest.handlerCycles, index),
      });
    }
    const devices = steps.flatMap((st) => {
      if (st.step !== 'irqfd') throw new ModelError('unreachable');
      const l = this.line(st.device, st.index);
      if (l.viaEventfd) return [];
      return {
        device: l.hw,
        line: st.index,
        intid: 32 + st.gsi!,
        target: 0,
        handlerCycles: spec.guest.handlerCycles,
        assertedAt: () => l.lastAssertAt,
        onLatency: (cycles: number, vcpu: number) => this.delivered(l, cycles, vcpu, index),
      };
    });
    const g = new GuestKernel({
      engine: this.engine,
      gic: hostGicV2(this.host.irq),
      vcpus: spec.vcpus,
      name: spec.name,
      eoiMode: spec.guest.eoiMode,
      eoi: spec.guest.eoi,
      devices,
      irqs,
      workload: this.guestWorkload(spec.guest.workload),
      trapLoop: this.guestTrapLoop(() => this.vms[index]!, spec.guest.workload),
      onVirqCompletion: (cycles) => this.probe('virqCompletion', cycles),
      onEoi:
        this.ht === null
          ? undefined
          : (vcpu, intid) => this.ht!.guestEoi(this.vms[index]!.kvmVm, vcpu, intid, currentOrNull()),
      onVectorEntry: (at, vcpu) => {
        const v = this.vms[index];
        if (v !== undefined) v.vectorAt[vcpu] = at;
      },
    });
    this.hooks.onGuest?.(g, spec.name, this.mode);
    for (const r of spec.retarget) {
      const add = () => g.scheduleRetarget({ at: this.engine.now + (r.delay ?? 0), intid: r.intid, target: r.vcpu });
      if (r.after !== undefined) this.on(r.after, add);
    }
    return g;
  }

  private guestFactory(): GuestFactory {
    return {
      createGuest: (env: GuestVcpuEnv) => {
        const v = this.vms.find((x) => x.kvmVm === env.vm);
        if (v === undefined) throw new ModelError(`no guest kernel for ${env.vm}`);
        return v.guest.createGuest(env);
      },
    };
  }

  // ---- IRQ accounting and events -------------------------------------------------------------------------------

  private line(device: string, index: number): LineState {
    const l = this.lineByName.get(`${device}/${index}`);
    if (l === undefined) throw new ModelError(`no line ${device}/${index}`);
    return l;
  }

  private lineIdx(l: LineState): number {
    return l.idx;
  }

  private raise(l: LineState): void {
    const i = this.lineIdx(l);
    this.c.raised(i);
    l.raisedN++;
    if (l.hw.isAsserted(l.index)) {
      this.c.coalesced(i);
    } else {
      this.seq++;
      l.seq = this.seq;
      l.lastAssertAt = this.engine.now;
      if (l.owned) l.outstanding++;
      else {
        this.c.orphaned(i);
        l.orphanPending++;
      }
    }
    l.hw.assert(l.index);
    const irq = this.deviceIrqSpec(l);
    if (irq.trigger === 'level' && typeof irq.hold === 'number') {
      if (l.holdTimer >= 0) this.engine.cancelTimer(l.holdTimer);
      l.holdTimer = this.engine.after(irq.hold, {
        name: `${l.device}/${l.index}.hold`,
        fire: () => {
          l.holdTimer = -1;
          if (!l.hw.isAsserted(l.index)) return;
          // the device withdrew the condition before a driver served it: accounted as coalesced, not lost
          if (l.outstanding > 0) {
            l.outstanding--;
            this.c.coalesced(i);
          }
          l.hw.deassert(l.index);
        },
      });
    }
    this.notify();
  }

  /**
   * A `via: eventfd` event: the VMM's I/O thread (on CPU 0, the VMM's CPU) writes 1 to the irqfd's eventfd —
   * write(2) → eventfd_write → irqfd_wakeup → kvm_vgic_inject_irq → kick the vCPU. The event's time (for
   * `latency.toGuest` and probe `ioLatencyIn`) is the first step of that write(2). A raise while the previous one
   * has not reached the guest yet is coalesced (the vIRQ is still pending: one pending state per INTID); one while
   * the I/O thread is still in its previous write is coalesced too (the backend batches it).
   */
  private signalEventfd(l: LineState): void {
    const i = this.lineIdx(l);
    this.c.raised(i);
    l.raisedN++;
    const w = this.wirings.find((x) => x.device === l.device && x.index === l.index);
    if (w === undefined || !l.owned) {
      this.c.orphaned(i);
      this.notify();
      return;
    }
    if (l.outstanding > 0 || this.ioThread?.busy === true) {
      this.c.coalesced(i);
      this.notify();
      return;
    }
    if (this.ioThread === null) {
      this.ioThread = this.p.thread('iothread', 0);
      this.ioBuf = this.p.mem.alloc(8);
      this.p.mem.view(this.ioBuf, 8).setBigUint64(0, 1n, true);
    }
    this.seq++;
    l.seq = this.seq;
    l.outstanding++;
    const engine = this.engine;
    const p = this.p;
    const fd = w.trigger;
    const buf = this.ioBuf;
    function* write(): TaskGen<number> {
      l.lastAssertAt = engine.now;
      return yield* p.sysWrite(fd, buf, 8);
    }
    this.ioThread.submit(`write(${fd}) ${l.device}/${l.index}`, write());
    this.notify();
  }

  private deviceIrqSpec(l: LineState) {
    return this.s.devices.find((d) => d.name === l.device)!.irqs[l.index]!;
  }

  private delivered(l: LineState, cycles: number, vcpu: number, vmIndex: number): void {
    const i = this.lineIdx(l);
    if (l.outstanding > 0) {
      l.outstanding--;
      this.c.delivered(i, cycles);
    } else if (l.orphanPending > 0) {
      l.orphanPending--;
      this.orphanDelivered[i] = (this.orphanDelivered[i] ?? 0) + 1;
      this.c.delivered(i, cycles);
    } else {
      this.c.duplicate(i);
    }
    l.deliveredN++;
    this.ht?.guestIrqEntry(this.vms[vmIndex]!.kvmVm.vcpus[vcpu]?.runTask ?? null, vcpu, l.intid, l.seq);
    this.notify();
  }

  private readonly orphanDelivered: number[] = [];

  private eventHappened(ev: ScenarioEvent): boolean {
    if (ev.kind === 'step') return this.doneSteps.has(ev.id);
    const l = this.lines.find((x) => x.device === ev.device && x.index === ev.index);
    if (l === undefined) return false;
    const n = ev.kind === 'raised' ? l.raisedN : ev.kind === 'delivered' ? l.deliveredN : l.deactivatedN;
    return n >= ev.n;
  }

  private on(ev: ScenarioEvent, fn: () => void): void {
    this.listeners.push({ ev, fn, fired: false });
  }

  private notify(): void {
    for (const x of this.listeners) {
      if (!x.fired && this.eventHappened(x.ev)) {
        x.fired = true;
        x.fn();
      }
    }
  }

  // ---- workloads -----------------------------------------------------------------------------------------------

  private armWorkloads(t0: number): void {
    this.s.workloads.forEach((w, wi) => {
      const l = this.line(w.device, w.index);
      const viaEventfd = w.via === 'eventfd';
      const until = t0 + (w.until ?? this.s.duration);
      const rng = this.engine.random.stream(`workload${wi}`);
      let n = 0;
      let inBurst = 0;
      let burstStart = 0;
      const engine = this.engine;
      const next = (t: number): number => {
        switch (w.kind) {
          case 'periodic':
            return t + w.period;
          case 'poisson': {
            const mean = w.meanInterval ?? this.s.host.hz / w.rate!;
            return t + Math.max(1, Math.round(rng.exponential(mean)));
          }
          case 'burst':
            if (inBurst < w.size) return t + w.spacing;
            inBurst = 0;
            burstStart += w.every;
            return burstStart;
        }
      };
      const handler = {
        name: `workload${wi}`,
        fire: () => {
          n++;
          inBurst++;
          if (viaEventfd) this.signalEventfd(l);
          else this.raise(l);
          if (w.count !== undefined && n >= w.count) return;
          const t = next(engine.now);
          if (t <= until) engine.at(t, handler);
        },
      };
      const start = (base: number) => {
        const t0 = base + w.start;
        burstStart = t0;
        if (t0 <= until) engine.at(t0, handler);
      };
      if (w.after !== undefined) this.on(w.after, () => start(engine.now));
      else start(t0);
    });
  }

  // ---- the VMM -------------------------------------------------------------------------------------------------

  private vmState(name: string | undefined): VmState {
    const v = name === undefined ? this.vms[0] : this.vms.find((x) => x.name === name);
    if (v === undefined) throw new ModelError(`no VM ${name}`);
    return v;
  }

  private vmmError(what: string, e: unknown): void {
    if (!(e instanceof ErrnoError)) throw e;
    this.violations.push({ invariant: 'vmm-call', message: `${what}: ${e.message}`, atCycles: this.engine.now });
  }

  private createVms(): void {
    this.s.vms.forEach((spec, index) => {
      const guest = this.buildGuest(spec, index);
      const before = this.host.kvm.vms.length;
      const vmState: VmState = {
        name: spec.name,
        index,
        spec,
        fds: { kvm: -1, vm: -1, vgic: -1, vcpus: [] },
        kvmVm: null as unknown as KvmVm,
        guest,
        kvmVfio: -1,
        threads: [],
        stop: { v: false },
        destroyed: false,
        vmClosed: false,
        trapAt: new Array<number>(spec.vcpus).fill(-1),
        vectorAt: new Array<number>(spec.vcpus).fill(0),
        mmioKernel: { n: 0, sum: 0 },
      };
      this.vms.push(vmState);
      // the guest's GIC as big as the host's, up to what a vGIC-v2 takes
      const nrIrqs = Math.min(this.s.host.gic.nrIrqs, VGIC_MAX_NR_IRQS);
      const fds = createQemuVm(this.p, { vcpus: spec.vcpus, nrIrqs });
      (vmState as { fds: QemuVm }).fds = fds;
      (vmState as { kvmVm: KvmVm }).kvmVm = this.host.kvm.vms[before]!;
    });
  }

  private startVcpus(v: VmState): void {
    v.fds.vcpus.forEach((fd, i) => {
      const cpu = v.spec.pinning[i] ?? (i + 1) % this.engine.cpus.length;
      const th = this.p.thread(`CPU ${i}/KVM`, cpu);
      v.threads.push(th);
      th.submit(`KVM_RUN loop ${v.name}/vcpu${i}`, this.vcpuLoop(fd, v, i));
    });
  }

  /**
   * QEMU's kvm_cpu_exec loop: KVM_RUN until asked to stop; EINTR re-enters unless stopping. A KVM_EXIT_MMIO is a
   * doorbell write the VMM completes by simply re-entering (writes need no data back); when the guest's trap loop
   * issued it, probe `ioLatencyOut` = the guest's store → this thread back in user space with the exit (the end of
   * the syscall-exit step: the cycles until the VMM's code runs).
   */
  private *vcpuLoop(fd: number, v: VmState, idx: number): TaskGen<number> {
    const p = this.p;
    const exitReasonAt = kvmRunAddress(p, fd) + kvmRun.offsetof('exit_reason');
    for (;;) {
      try {
        yield* p.sysIoctl(fd, KVM_RUN, 0);
        const reason = p.mem.view(exitReasonAt, 4).getUint32(0, true);
        const at = v.trapAt[idx]!;
        if (reason === KVM_EXIT_MMIO && at >= 0) {
          v.trapAt[idx] = -1;
          const t = currentOrNull();
          const end = t !== null ? this.engine.cpus[t.cpu]!.readyAt : this.engine.now;
          this.probe('ioLatencyOut', end - at);
        }
      } catch (e) {
        if (!(e instanceof ErrnoError) || e.errno !== 'EINTR') throw e;
      }
      if (v.stop.v) return 0;
    }
  }

  /** Stop a VM's vCPUs as QEMU does (pause_all_vcpus: a signal to each vCPU thread, which leaves KVM_RUN). */
  private stopVcpus(v: VmState): void {
    v.stop.v = true;
    for (const th of v.threads) signalThread(this.host, th, this.p.main.cpu);
    this.engine.runUntil(() => v.threads.every((th) => !th.busy), `${v.name}: vCPU threads to leave KVM_RUN`);
  }

  private openDevice(v: VmState, name: string): void {
    const spec = this.s.devices.find((d) => d.name === name)!;
    const p = this.p;
    const sameGroup = this.opened.find(
      (o) => o.vm === v.name && this.s.devices.find((d) => d.name === o.name)?.iommuGroup === spec.iommuGroup,
    );
    let container: number;
    let group: number;
    if (sameGroup !== undefined) {
      container = sameGroup.container;
      group = sameGroup.group;
    } else {
      container = p.open('/dev/vfio/vfio');
      group = p.open(`/dev/vfio/${spec.iommuGroup}`);
      const st = p.mem.allocBytes(vfioGroupStatus.encode({ argsz: vfioGroupStatus.size, flags: 0 }));
      p.ioctl(group, VFIO_GROUP_GET_STATUS, st);
      const cfd = p.mem.alloc(4);
      p.mem.writeS32(cfd, container);
      p.ioctl(group, VFIO_GROUP_SET_CONTAINER, cfd);
      p.ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU);
    }
    const device = p.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, p.mem.writeString(name));
    const o: OpenDevice = { vm: v.name, name, container, group, device, groupAdded: false };
    this.opened.push(o);
    // hw/vfio: the kvm-vfio device is created at the first group and told about each group
    if (sameGroup !== undefined) return;
    if (v.kvmVfio < 0 && this.kvmVfioOk) {
      if (kvmVfioSupported(p, v.fds.vm)) v.kvmVfio = createKvmVfio(p, v.fds.vm);
      else {
        this.kvmVfioOk = false;
        this.notes.push('KVM_DEV_TYPE_VFIO is not available (KVM_CREATE_DEVICE_TEST fails): no KVM_DEV_VFIO_GROUP_ADD');
      }
    }
    if (v.kvmVfio >= 0) {
      try {
        kvmVfioGroupAdd(p, v.kvmVfio, group);
        o.groupAdded = true;
      } catch (e) {
        this.vmmError(`KVM_DEV_VFIO_GROUP_ADD ${name}`, e);
      }
    }
  }

  private opened1(vm: string, device: string, needDeviceFd = true): OpenDevice {
    const o = this.opened.find((x) => x.vm === vm && x.name === device && (!needDeviceFd || x.device >= 0));
    if (o === undefined) throw errno('EBADF', `${device}: no open device fd in ${vm} (closed earlier)`);
    return o;
  }

  private execStep(st: ScenarioStep): void {
    const v = this.vmState(st.vm);
    const p = this.p;
    try {
      switch (st.step) {
        case 'open-device':
          this.openDevice(v, st.device);
          break;
        case 'irqfd': {
          const o = this.opened1(v.name, st.device);
          const l = this.line(st.device, st.index);
          const w = wireIrqfd(p, v.fds.vm, o.device, st.index, st.gsi!, st.resample!);
          this.wirings.push({ ...w, vm: v.name, device: st.device, index: st.index });
          this.ht?.wire(l, v.kvmVm, st.gsi!, p, w.trigger, w.resample);
          l.owned = true;
          break;
        }
        case 'assign': {
          const o = this.opened1(v.name, st.device);
          if (v.kvmVfio < 0) throw errno('ENODEV', 'assign: the VM has no kvm-vfio device');
          assignIrq(p, v.kvmVfio, o.device, st.index, st.gsi!);
          this.assigned.push({ vm: v.name, device: st.device, index: st.index, gsi: st.gsi! });
          break;
        }
        case 'deassign': {
          const o = this.opened1(v.name, st.device);
          if (v.kvmVfio < 0) throw errno('ENODEV', 'deassign: the VM has no kvm-vfio device');
          deassignIrq(p, v.kvmVfio, o.device, st.index, st.gsi!);
          const i = this.assigned.findIndex((a) => a.vm === v.name && a.device === st.device && a.index === st.index);
          if (i >= 0) this.assigned.splice(i, 1);
          break;
        }
        case 'close':
          this.closeStep(v, st.what, st.device);
          break;
        case 'destroy':
          this.destroy(v, true);
          break;
        case 'die':
          this.die(st.order, st.window);
          break;
        case 'ioctl':
          this.rawIoctlStep(v, st);
          break;
      }
    } catch (e) {
      this.vmmError(`${st.step}${'device' in st && st.device !== undefined ? ` ${st.device}` : ''}`, e);
    }
    if (st.id !== undefined) this.doneSteps.add(st.id);
    this.hooks.afterStep?.(st, this.host, this.mode);
    this.notify();
  }

  /**
   * A line's VM is gone mid-run (a `destroy` or `die` step): raises not yet delivered can no longer reach a guest
   * (the vIRQ state went with the vGIC), so they count as orphaned; a guest already in the handler may still deliver
   * one (`delivered` turns that orphan back into a delivery).
   */
  private release(l: LineState): void {
    l.owned = false;
    for (; l.outstanding > 0; l.outstanding--) {
      this.c.orphaned(l.idx);
      l.orphanPending++;
    }
  }

  /**
   * The `die` step: the VMM is killed (SIGKILL → exit_group). At a seeded random instant in [0, window), every
   * thread gets the fatal signal; `fd` order is Linux's (do_exit → exit_files → close_files, fd order, releases via
   * task_work); `random` closes every fd in a seeded random permutation first (each close(2) releasing at once),
   * which covers every order in which the objects can lose their last reference.
   */
  private die(order: 'fd' | 'random', window: number): void {
    const rng = this.engine.random.stream('vmm-die');
    if (window > 0) this.engine.run(rng.below(window));
    for (const v of this.vms) {
      v.stop.v = true;
      v.destroyed = true;
    }
    for (const l of this.lines) this.release(l);
    if (order === 'random') {
      for (const v of this.vms) this.stopVcpus(v);
      const fds = this.p.files.openFds();
      for (let i = fds.length - 1; i > 0; i--) {
        const j = rng.below(i + 1);
        const t = fds[i]!;
        fds[i] = fds[j]!;
        fds[j] = t;
      }
      for (const fd of fds) this.p.close(fd);
    }
    this.p.exit();
    for (const v of this.vms) {
      v.vmClosed = true;
      v.kvmVfio = -1;
    }
  }

  /**
   * A raw `ioctl` step: resolve the fd reference, lay the argument out in user memory, call, and compare the outcome
   * with `expect` ("ok" = success, else that errno exactly). A mismatch is an `ioctl-expect` violation; an
   * argument that cannot be built (a defensive check: the schema rejects these) is `ioctl-arg`.
   */
  private rawIoctlStep(v: VmState, st: Extract<ScenarioStep, { step: 'ioctl' }>): void {
    const req = typeof st.request === 'number' ? `0x${(st.request >>> 0).toString(16)}` : st.request;
    const what = `ioctl(${st.fd}, ${req})`;
    const resolve = (ref: string) => this.fdRef(v, ref);
    let got: string;
    let detail: string;
    this.p.main.ut.failNth = st.failNth ?? 0; // /proc/thread-self/fail-nth
    try {
      const { ret, created } = rawIoctl(
        this.p,
        { fd: resolve(st.fd), request: st.request, struct: st.struct, arg: st.arg },
        resolve,
      );
      if (st.as !== undefined) this.boundFds.set(st.as, created);
      got = 'ok';
      detail = `returned ${ret}`;
    } catch (e) {
      if (e instanceof RawIoctlError) {
        this.violations.push({ invariant: 'ioctl-arg', message: `${what}: ${e.message}`, atCycles: this.engine.now });
        return;
      }
      if (!(e instanceof ErrnoError)) throw e;
      got = e.errno;
      detail = e.message;
    } finally {
      this.p.main.ut.failNth = 0;
    }
    if (got === st.expect) return;
    this.violations.push({
      invariant: IOCTL_EXPECTATION,
      message: `${what}: expected ${st.expect === 'ok' ? 'success' : st.expect}, got ${got === 'ok' ? 'success' : got} (${detail})`,
      atCycles: this.engine.now,
    });
  }

  /**
   * The fd a reference names, as the VMM holds it now; -1 (with a note) when it is not open (never opened, closed, or
   * its VM destroyed), so the call fails with EBADF as a stale fd would. Unqualified `vm`, `kvm`, `kvm-vfio`,
   * `vcpu:<i>` and device references are the step's VM's.
   */
  private fdRef(v: VmState, ref: string): number {
    const m = FDREF_RE.exec(ref);
    if (m === null && !BOUND_FD_RE.test(ref))
      throw new RawIoctlError(`'${ref}' is neither a uapi constant (KVM_*, VFIO_*) nor an fd reference`);
    const [, kind, name, idx] = m ?? [];
    let fd = m === null ? (this.boundFds.get(ref) ?? -1) : -1; // a name bound by `as` (none if that call failed)
    switch (kind) {
      case 'kvm':
      case 'vm':
      case 'kvm-vfio': {
        const w = this.vmState(name ?? v.name);
        if (kind === 'kvm') fd = w.destroyed ? -1 : w.fds.kvm;
        else if (kind === 'vm') fd = w.vmClosed ? -1 : w.fds.vm;
        else fd = w.kvmVfio;
        break;
      }
      case 'vcpu': {
        const w = idx === undefined ? v : this.vmState(name);
        const i = Number(idx ?? name);
        fd = w.destroyed ? -1 : (w.fds.vcpus[i] ?? -1);
        break;
      }
      case 'device':
      case 'group':
      case 'container': {
        const o =
          this.opened.find((x) => x.vm === v.name && x.name === name) ?? this.opened.find((x) => x.name === name);
        fd = o === undefined ? -1 : o[kind];
        break;
      }
      case 'irqfd':
      case 'resamplefd': {
        const index = Number(idx);
        const w =
          this.wirings.find((x) => x.vm === v.name && x.device === name && x.index === index) ??
          this.wirings.find((x) => x.device === name && x.index === index);
        fd = w === undefined || this.vmState(w.vm).destroyed ? -1 : kind === 'irqfd' ? w.trigger : w.resample;
        break;
      }
    }
    if (fd < 0) this.notes.push(`ioctl step: '${ref}' names no open fd (now): passing -1`);
    return fd;
  }

  private closeStep(v: VmState, what: 'device' | 'group' | 'kvm-vfio' | 'vm', device: string | undefined): void {
    const p = this.p;
    if (what === 'device' || what === 'group') {
      const o = this.opened1(v.name, device!, what !== 'group');
      for (const l of this.lines) if (l.device === device) l.owned = false;
      if (what === 'device') {
        p.close(o.device);
        o.device = -1;
      } else {
        if (o.group < 0) throw errno('EBADF', `the group of ${device} is already closed`);
        if (o.groupAdded && v.kvmVfio >= 0) kvmVfioGroupDel(p, v.kvmVfio, o.group);
        o.groupAdded = false;
        p.close(o.group);
        o.group = -1;
      }
    } else if (what === 'kvm-vfio') {
      if (v.kvmVfio >= 0) p.close(v.kvmVfio);
      v.kvmVfio = -1;
    } else {
      p.close(v.fds.vm);
      v.vmClosed = true;
    }
  }

  /**
   * QEMU shutdown of one VM: stop the vCPUs, deassign forwarded IRQs, take the irqfds down, close each device, its
   * group (KVM_DEV_VFIO_GROUP_DEL first) and container, then the kvm-vfio, vCPU, vGIC and VM fds.
   */
  private destroy(v: VmState, midRun = false): void {
    if (v.destroyed || this.p.exited) return;
    v.destroyed = true;
    const p = this.p;
    const guard = (what: string, f: () => unknown) => {
      try {
        f();
      } catch (e) {
        this.vmmError(`destroy ${v.name}: ${what}`, e);
      }
    };
    this.stopVcpus(v);
    for (const a of this.assigned.filter((x) => x.vm === v.name)) {
      const o = this.opened.find((x) => x.vm === v.name && x.name === a.device);
      if (o !== undefined && o.device >= 0 && v.kvmVfio >= 0)
        guard(`deassign ${a.device}/${a.index}`, () => deassignIrq(p, v.kvmVfio, o.device, a.index, a.gsi));
    }
    for (const w of this.wirings.filter((x) => x.vm === v.name)) {
      const o = this.opened.find((x) => x.vm === v.name && x.name === w.device);
      if (o !== undefined && o.device >= 0 && !v.vmClosed)
        guard(`irqfd off ${w.device}/${w.index}`, () => unwireIrqfd(p, v.fds.vm, o.device, w.index, w));
    }
    for (const l of this.lines) {
      if (!this.opened.some((o) => o.vm === v.name && o.name === l.device)) continue;
      if (midRun) this.release(l);
      else l.owned = false;
    }
    const groups = new Set<number>();
    const containers = new Set<number>();
    for (const o of this.opened.filter((x) => x.vm === v.name)) {
      if (o.device >= 0) guard(`close device ${o.name}`, () => p.close(o.device));
      o.device = -1;
      if (o.group >= 0 && !groups.has(o.group)) {
        groups.add(o.group);
        if (o.groupAdded && v.kvmVfio >= 0)
          guard(`KVM_DEV_VFIO_GROUP_DEL ${o.name}`, () => kvmVfioGroupDel(p, v.kvmVfio, o.group));
        guard(`close group of ${o.name}`, () => p.close(o.group));
      }
      o.group = -1;
      if (o.container >= 0 && !containers.has(o.container)) {
        containers.add(o.container);
        guard(`close container of ${o.name}`, () => p.close(o.container));
      }
      o.container = -1;
    }
    if (v.kvmVfio >= 0) guard('close kvm-vfio', () => p.close(v.kvmVfio));
    v.kvmVfio = -1;
    for (const fd of v.fds.vcpus) guard('close vCPU', () => p.close(fd));
    guard('close vGIC', () => p.close(v.fds.vgic));
    if (!v.vmClosed) guard('close VM', () => p.close(v.fds.vm));
    v.vmClosed = true;
    guard('close /dev/kvm', () => p.close(v.fds.kvm));
  }

  // ---- measurement ---------------------------------------------------------------------------------------------

  private snapshot(): Snapshot {
    const exits: Record<ExitReason, number> = {
      irq: 0,
      maintenance: 0,
      ipi: 0,
      wfx: 0,
      hvc: 0,
      dabt: 0,
      sysreg: 0,
      other: 0,
    };
    for (const v of this.vms) {
      for (const vc of v.kvmVm.vcpus) {
        const st = vc.stat;
        const physical = st.irqExits - st.maintenanceExits;
        const ipi = Math.min(st.kickIpis, physical);
        exits.irq += physical - ipi;
        exits.maintenance += st.maintenanceExits;
        exits.ipi += ipi;
        exits.wfx += st.wfxExits;
        exits.hvc += st.hvcExits;
        exits.dabt += st.dabtExits;
        exits.sysreg += st.sysExits;
        exits.other += st.exits - st.irqExits - st.wfxExits - st.hvcExits - st.dabtExits - st.sysExits;
      }
    }
    let signals = 0;
    let unmasks = 0;
    for (const d of this.host.devices) {
      for (const irq of d.vdev.irqs) {
        signals += irq.signals;
        unmasks += irq.unmasks;
      }
    }
    let resamples = 0;
    for (const v of this.vms) {
      for (const r of v.kvmVm.irqfds.resamplers) {
        resamples += r.acks;
        signals += r.acks * r.irqfds.filter((x) => x.resamplefd !== null).length;
      }
    }
    return {
      at: this.engine.now,
      exits,
      host: this.hostCycles,
      hostByCpu: [...this.hostByCpu],
      signals,
      unmasks,
      resamples,
      maint: this.maint,
      inject: this.injections,
      lrOverflows: this.lrOverflows,
    };
  }

  private finishMetrics(simCycles: number): Metrics {
    const a = this.windowStart ?? this.zeroSnapshot();
    const b = this.windowEnd ?? this.snapshot();
    for (const r of Object.keys(b.exits) as ExitReason[]) {
      const n = b.exits[r] - a.exits[r];
      for (let i = 0; i < n; i++) this.c.exit(r);
    }
    const k = this.c.counters;
    k.eventfdSignals = b.signals - a.signals;
    k.unmasks = b.unmasks - a.unmasks;
    k.resamples = b.resamples - a.resamples;
    // the maintenance interrupt that made a vCPU exit (its line usually falls at the fold, before the host takes
    // it), or one the host took outside guest mode — whichever counted more
    k.maintenanceIrqs = Math.max(b.maint - a.maint, b.exits.maintenance - a.exits.maintenance);
    k.injections = b.inject - a.inject;
    k.lrOverflows = b.lrOverflows - a.lrOverflows;
    const dist = this.host.irq.gic.distributor;
    let leftActive = 0;
    let leftMasked = 0;
    for (const d of this.host.devices) {
      d.descs.forEach((desc, i) => {
        if (dist.isActive(desc.hwirq)) leftActive++;
        const irq = d.vdev.irqs[i];
        if (irq?.masked === true && desc.actions.length > 0) leftMasked++;
      });
    }
    const m = this.c.finish({
      simCycles,
      hostCycles: b.host - a.host,
      hostByCpu: b.hostByCpu.map((x, i) => x - a.hostByCpu[i]!),
      windowCycles: b.at - a.at,
      leftActive,
      leftMasked,
    });
    // orphaned raises that a late irqfd delivered after all: not orphaned (see `delivered`)
    for (let i = 0; i < m.lines.length; i++) {
      const fix = this.orphanDelivered[i] ?? 0;
      if (fix === 0) continue;
      const line = m.lines[i]!;
      line.orphaned -= fix;
      m.irqs.orphaned -= fix;
      const lost = Math.max(0, line.raised - line.delivered - line.coalesced - line.orphaned);
      m.irqs.lost += lost - line.lost;
      line.lost = lost;
    }
    return m;
  }

  private zeroSnapshot(): Snapshot {
    return {
      at: 0,
      exits: { irq: 0, maintenance: 0, ipi: 0, wfx: 0, hvc: 0, dabt: 0, sysreg: 0, other: 0 },
      host: 0,
      hostByCpu: this.engine.cpus.map(() => 0),
      signals: 0,
      unmasks: 0,
      resamples: 0,
      maint: 0,
      inject: 0,
      lrOverflows: 0,
    };
  }

  // ---- the run -------------------------------------------------------------------------------------------------

  run(): ModeRun {
    const s = this.s;
    const engine = this.engine;
    // host SPI affinity (an administrator's /proc/irq/N/smp_affinity): the CPU of the vCPU the line targets
    for (const d of s.devices) {
      d.irqs.forEach((irq, index) => {
        const w = s.vmm.find((x) => x.step === 'irqfd' && x.device === d.name && x.index === index);
        const vm = s.vms.find((v) => v.name === (w?.vm ?? s.vms[0]!.name)) ?? s.vms[0]!;
        const cpus = irq.affinity === undefined ? [vm.pinning[0] ?? 0] : [irq.affinity].flat();
        gicRouteSpi(
          this.host.irq,
          irq.intid,
          cpus.reduce((m, c) => m | (1 << c), 0),
        );
      });
    }
    this.createVms();
    const steps = stepsForMode(s, this.mode);
    let i = 0;
    while (i < steps.length && steps[i]!.at === undefined && steps[i]!.after === undefined) this.execStep(steps[i++]!);
    for (const v of this.vms) if (!v.destroyed) this.startVcpus(v);
    engine.runUntil(() => this.vms.every((v) => v.destroyed || v.guest.booted), 'the guests to boot');
    // The scenario clock starts here: VMs built, leading steps done, guests booted (a device does not interrupt
    // before its driver is up). `at`, workload times and the duration count from t0.
    const t0 = engine.now;
    this.t0 = t0;
    this.windowStart = this.snapshot();
    const end = t0 + s.duration;
    this.armWorkloads(t0);
    for (const v of this.vms) {
      for (const r of v.spec.retarget) {
        if (r.after === undefined) v.guest.scheduleRetarget({ at: t0 + (r.at ?? 0), intid: r.intid, target: r.vcpu });
      }
    }
    for (; i < steps.length; i++) {
      const st = steps[i]!;
      if (st.after !== undefined) {
        const ev = st.after;
        try {
          engine.runUntil(() => this.eventHappened(ev) || engine.now >= end, `event for step ${i}`);
        } catch (e) {
          if (!(e instanceof ModelError)) throw e;
        }
        if (!this.eventHappened(ev)) {
          this.notes.push(`vmm[${i}] (${st.step}) waits for an event that did not happen before the end: skipped`);
          continue;
        }
        if (st.delay !== undefined && st.delay > 0) engine.run(st.delay);
      }
      if (st.at !== undefined && t0 + st.at > engine.now) {
        if (st.at > s.duration) {
          this.notes.push(`vmm[${i}] (${st.step}) is due after the duration: skipped`);
          continue;
        }
        engine.run(t0 + st.at - engine.now);
      }
      this.execStep(st);
    }
    if (engine.now < end) engine.run(end - engine.now);
    // workloads have stopped: let IRQs still in flight reach the guest (bounded) before the VMM tears down
    const drainEnd = engine.now + Math.round(s.host.hz / 1000);
    const inFlight = () => this.lines.some((l) => l.owned && l.outstanding > 0);
    if (inFlight()) {
      try {
        engine.runUntil(() => !inFlight() || engine.now >= drainEnd, 'in-flight IRQs to be delivered');
      } catch (e) {
        if (!(e instanceof ModelError)) throw e;
      }
    }
    this.windowEnd = this.snapshot();
    if (s.teardown) {
      for (const v of this.vms) this.destroy(v);
      if (!this.p.exited) this.p.exit();
      engine.settle();
    }
    const metrics = this.finishMetrics(engine.now - t0);
    this.checkProbeSamples(metrics);
    for (const v of this.vms) {
      const m = v.mmioKernel;
      if (m.n > 0)
        this.notes.push(
          `${v.name}: ${m.n} GICD reads emulated in the kernel, mean round trip ${Math.round(m.sum / m.n)} cycles (interrupt-controller trap; no Metrics probe)`,
        );
    }
    for (const msg of this.host.checkInvariants({ teardown: s.teardown })) {
      this.violations.push({ invariant: invariantId(msg), message: msg, atCycles: engine.now });
    }
    engine.observer = null;
    this.progress(1);
    return { mode: this.mode, metrics, violations: this.violations, ...this.traceOutput() };
  }

  /**
   * An `expect` on a microbenchmark probe that recorded nothing in this mode would pass vacuously (the CLI skips a
   * metric without samples): it is a violation unless the profile has no such anchor (then it is skipped).
   */
  private checkProbeSamples(m: Metrics): void {
    const anchors = COST_PROFILES[this.s.host.costProfile].anchors;
    for (const e of this.s.expect) {
      if (e.mode !== undefined && e.mode !== this.mode) continue;
      if (e.anchor !== undefined && anchors[e.anchor] === undefined) continue;
      const [head, name] = e.metric.split('.');
      if (head !== 'probes' || !(PROBE_NAMES as readonly string[]).includes(name ?? '')) continue;
      if (m.probes[name as ProbeName] !== undefined) continue;
      this.violations.push({
        invariant: 'expect-no-samples',
        message: `expect ${e.metric}: probe '${name}' recorded no sample in the ${this.mode} run (the workload does not exercise it)`,
      });
    }
  }

  private traceOutput(): { trace?: TraceOutput } {
    const tr = this.tracer;
    if (tr === null) return {};
    const hz = this.s.host.hz;
    const cpus = this.s.host.cpus;
    return {
      trace:
        this.traceFormat === 'perfetto'
          ? { format: 'perfetto', data: writeChromeJson(tr, { hz, cpus }) }
          : { format: 'text', data: writeText(tr, { hz, cpus }) },
    };
  }
}
