/**
 * The scenario runner (the `RunScenario` of src/scenario/runnerApi.ts): for each requested mode it builds the machine
 * (createHost), a guest kernel per VM, and a VMM process that drives everything through the ioctl ABI the way QEMU
 * does; it runs the VMM plan at its times and events, raises the device IRQs from engine timers, measures, tears the
 * VM down, lets the machine quiesce and checks the invariants. One mode run is assembled from:
 *   - the VMM interpreter (vmmInterpreter.ts): the VMM's fds and every step's ioctl sequence;
 *   - the plan executor (planExecutor.ts): the steps at their times and events;
 *   - the line ledger (lineLedger.ts): per line, what was asserted, delivered, coalesced and orphaned;
 *   - the host-cycle observer (hostCycles.ts) and the metrics window (metricsWindow.ts).
 *
 * Timeline of one mode run:
 *   t=0   workload timers armed (absolute times); the VMM builds each VM (KVM_CREATE_VM, vGIC, vCPUs) and runs the
 *         leading steps of the plan (those without `at`/`after`: open-device, irqfd, assign) — as QEMU realizes its
 *         devices before the vCPUs run; then one thread per vCPU ("CPU n/KVM", pinned) loops on KVM_RUN.
 *   ...   the remaining steps at their times / events; the guest boots (trapped GICD writes) then runs its workload.
 *   measurement window: from the moment every guest has booted to `duration`.
 *   duration: workloads have stopped; the VMM destroys each VM (stop vCPUs with a signal, deassign, irqfds off,
 *         close device, group, container, kvm-vfio, vCPU, vGIC and VM fds) and exits; the machine settles.
 */
import { ErrnoError } from '../abi/errno.js';
import { KVM_EXIT_MMIO, KVM_RUN } from '../abi/kvm.js';
import { kvmRun } from '../abi/kvmStructs.js';
import type { GuestExtraIrq, GuestTrapLoop, GuestWorkload } from '../guest/guestKernel.js';
import { GuestKernel } from '../guest/guestKernel.js';
import type { GuestItsDevice } from '../guest/itsDriver.js';
import { gicRouteSpi } from '../host/irq/boot.js';
import type { Process, UThread } from '../host/process.js';

/** include/uapi/linux/fs.h INR_OPEN_MAX: the default hard RLIMIT_NOFILE. */
const INR_OPEN_MAX = 4096;

import { kvmRunAddress } from '../kvm/vcpu.js';
import type { KvmVm } from '../kvm/vm.js';
import { createHost, type Host } from '../machine.js';
import { costDefs } from '../sim/costs.js';
import type { Engine, TimerHandler } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import type { Prng } from '../sim/prng.js';
import { COST_PROFILES, resolveCosts } from '../sim/profiles.js';
import { currentOrNull, type Op, TASK_BLOCKED, TASK_IN_GUEST } from '../sim/task.js';
import { writeChromeJson } from '../trace/chromeJsonWriter.js';
import { writeText } from '../trace/textWriter.js';
import { Tracer } from '../trace/tracer.js';
import {
  LedgerIrqHandler,
  RunGuestProbes,
  type RunGuestSink,
  RunLineProbes,
  RunTrapProbes,
  type VmProbes,
} from './guestProbes.js';
import { HostCycleObserver, type ProgressSink } from './hostCycles.js';
import { HostTrace } from './hostTrace.js';
import { type LedgerEntry, LineLedger, type LineState, type MsiVectorState } from './lineLedger.js';
import { type Metrics, MetricsCollector, PROBE_NAMES, type ProbeName } from './metrics.js';
import { MetricsWindow, type WindowVms } from './metricsWindow.js';
import { pciFunctions } from './pciFunctions.js';
import { PlanExecutor, type PlanListener } from './planExecutor.js';
import { RunDeactivations, RunIrqHooks, RunKernelHooks, RunKvmHooks } from './runHooks.js';
import type { InvariantViolation, ModeRun, RunOptions, RunResult, TraceFormat, TraceOutput } from './runnerApi.js';
import type { Mode, Scenario, ScenarioStep, ScenarioWorkload } from './schema.js';
import { stepsForMode } from './schema.js';
import type { IrqfdWiring, RawIoctlError } from './vmm.js';
import { guestGicOptions, scenarioHostOptions, type VmmEvents, VmmInterpreter, type VmmVm } from './vmmInterpreter.js';

/** The invariant id of a raw `ioctl` step whose outcome is not its `expect`. */
export const IOCTL_EXPECTATION = 'ioctl-expect';

/** Cycles of one compute step of a `busy` / `{compute}` guest: the granularity at which it takes interrupts. */
export const GUEST_COMPUTE_QUANTUM = 200;
/** Trace ring capacity (records) per mode run. */
const TRACE_CAPACITY = 1 << 18;
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
    runs.push(new ModeRunner(s, mode, opts, i, notes).run(hooks));
  });
  opts.onProgress?.(1);
  return { runs, notes: [...new Set(notes)] };
}

// ---------------------------------------------------------------------------------------------------------------

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

/**
 * One mode run. What the machine reaches of it (its hooks, guest handlers, the vCPU threads' loops, the workloads'
 * timers) is plain data, so the machine state of a run can be copied (sim/snapshot.ts); the one function it keeps is
 * the caller's progress callback, when there is one. It is the VMM interpreter's events, the metrics window's VMs
 * and the host-cycle observer's progress sink.
 */
class ModeRunner implements VmmEvents, WindowVms, ProgressSink, RunGuestSink {
  private readonly host: Host;
  readonly engine: Engine;
  private readonly p: Process;
  private readonly tracer: Tracer | null;
  private readonly c: MetricsCollector;
  private readonly ledger: LineLedger;
  private readonly cycles: HostCycleObserver;
  readonly window: MetricsWindow;
  private readonly vmm: VmmInterpreter;
  private readonly plan: PlanExecutor;
  /** The tracepoints, when this run traces. */
  private readonly ht: HostTrace | null;
  private readonly probes: VmProbes[] = [];
  private readonly violations: InvariantViolation[] = [];
  private t0 = 0;
  private readonly maintIrq: number;
  /** The VMM's I/O thread (the backend of `via: eventfd` workloads), created on first use. */
  private ioThread: UThread | null = null;
  /** User address of the __u64 1 the I/O thread writes to an eventfd. */
  private ioBuf = -1;
  private readonly traceFormat: TraceFormat;
  private readonly onProgress: RunOptions['onProgress'];
  private readonly nModes: number;

  constructor(
    private readonly s: Scenario,
    private readonly mode: Mode,
    opts: RunOptions,
    /** This run's index in opts.modes (its share of the progress). */
    private readonly index: number,
    private readonly notes: string[],
  ) {
    this.onProgress = opts.onProgress;
    this.nModes = opts.modes.length;
    const known = new Set(costDefs().map((d) => d.name));
    const rc = resolveCosts(s.host.costProfile, s.host.costs, (n) => known.has(n));
    if (rc.skipped.length > 0)
      notes.push(
        `cost profile '${s.host.costProfile}' names costs the model does not define: ${rc.skipped.join(', ')}`,
      );
    this.host = createHost({ ...scenarioHostOptions(s, mode), seed: s.seed, hz: s.host.hz, costs: rc.costs });
    this.engine = this.host.engine;
    this.maintIrq = this.host.kvm.maintenanceIrq;
    this.traceFormat = opts.trace ?? 'text';
    this.tracer = opts.trace !== undefined ? new Tracer({ capacity: TRACE_CAPACITY, time: this.engine }) : null;
    const fns = pciFunctions(s);
    const msiDevices = this.host.msiDevices.map((fn) => ({
      fn,
      lpiBase: fns.find((f) => f.name === fn.spec.name)!.lpiBase,
    }));
    this.c = new MetricsCollector(mode, s.host.hz, [
      ...this.host.devices.flatMap((d) =>
        d.spec.irqs.map((irq, index) => ({ device: d.spec.name, index, intid: irq.intid })),
      ),
      ...msiDevices.flatMap(({ fn, lpiBase }) =>
        Array.from({ length: fn.spec.vectors }, (_, index) => ({
          device: fn.spec.name,
          index,
          intid: lpiBase + index,
        })),
      ),
    ]);
    this.ledger = new LineLedger(this.engine, this.c, this.host.devices, s, msiDevices);
    this.cycles = new HostCycleObserver(this.engine.cpus.length, this);
    this.engine.observer = this.cycles;
    this.window = new MetricsWindow(this.host, this, this.cycles);
    this.ht = this.tracer !== null ? new HostTrace(this.tracer, this.host) : null;
    if (this.ht !== null) for (const l of this.ledger.lines) this.ht.addLine(l, l.desc.irq);
    this.installHooks();
    this.ht?.installChain();
    // QEMU raises its RLIMIT_NOFILE soft limit to the hard limit at start-up (qemu_init, "increase NOFILE soft limit
    // on POSIX", QEMU 9.0): Linux's default hard limit INR_OPEN_MAX, 4096 — room for two eventfds per wired line
    this.p = this.host.kernel.process({ maxFds: INR_OPEN_MAX });
    this.vmm = new VmmInterpreter(this.host, this.p, s, this);
    this.plan = new PlanExecutor(this.engine, stepsForMode(s, mode), this.ledger, notes);
    this.hookLedger();
  }

  // ---- the VMM interpreter's events (VmmEvents) -------------------------------------------------------------------

  failed(what: string, e: ErrnoError): void {
    this.violations.push({ invariant: 'vmm-call', message: `${what}: ${e.message}`, atCycles: this.engine.now });
  }

  note(msg: string): void {
    this.notes.push(msg);
  }

  wired(v: VmmVm, device: string, index: number, w: IrqfdWiring): void {
    const l = this.line(device, index);
    this.ht?.wire(l, v.kvmVm, w.gsi, this.p, w.trigger, w.resample);
    l.owned = true;
  }

  unowned(device: string | null, vmGone: boolean): void {
    for (const l of [...this.ledger.lines, ...this.ledger.vectors]) {
      if (device !== null && l.device !== device) continue;
      if (vmGone) this.ledger.release(l);
      else l.owned = false;
    }
  }

  ioctlOutcome(st: Extract<ScenarioStep, { step: 'ioctl' }>, what: string, got: string, detail: string): void {
    if (got === st.expect) return;
    this.violations.push({
      invariant: IOCTL_EXPECTATION,
      message: `${what}: expected ${st.expect === 'ok' ? 'success' : st.expect}, got ${got === 'ok' ? 'success' : got} (${detail})`,
      atCycles: this.engine.now,
    });
  }

  badIoctl(what: string, e: RawIoctlError): void {
    this.violations.push({ invariant: 'ioctl-arg', message: `${what}: ${e.message}`, atCycles: this.engine.now });
  }

  /** The scenario's clock rate (cycles per second). */
  get hz(): number {
    return this.s.host.hz;
  }

  /** The VMs whose vGICs the metrics window reads. */
  kvmVms(): readonly KvmVm[] {
    return this.vmm.vms.map((v) => v.kvmVm);
  }

  /** The host-cycle observer's report: simulated time over the duration. */
  progress(engine: Engine): void {
    this.report((engine.now - this.t0) / Math.max(1, this.s.duration));
  }

  /** Progress of the whole call: this run's share of it. */
  private report(f: number): void {
    this.onProgress?.((this.index + Math.min(1, Math.max(0, f))) / this.nModes);
  }

  // ---- hooks: counters and trace -----------------------------------------------------------------------------

  private installHooks(): void {
    const ht = this.ht;
    const host = this.host;
    host.irq.genirq.trace = new RunIrqHooks(this.window, this.maintIrq, ht);
    host.kvm.trace = new RunKvmHooks(this.window, ht);
    if (ht !== null) {
      for (const d of host.devices) {
        d.hw.onLineChange = (_dev, index, level) => ht.lineChange(d.spec.name, d.spec.irqs[index]!.intid, level);
      }
    }
  }

  /** After the trace's chain: the hooks that call the plan and the ledger (RunKernelHooks, RunDeactivations). */
  private hookLedger(): void {
    const byIrq = new Map(this.ledger.lines.map((l) => [l.desc.irq, l]));
    this.host.kernel.trace = new RunKernelHooks(this.host.kernel.trace, this.ledger, byIrq);
    this.host.irq.gic.distributor.onDeactivate = new RunDeactivations(this.ledger, this.plan, this.ht);
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

  probe(name: ProbeName, cycles: number): void {
    if (this.window.open) this.c.probe(name, cycles);
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
  private guestTrapLoop(pr: VmProbes, w: Scenario['vms'][number]['guest']['workload']): GuestTrapLoop | undefined {
    if (typeof w === 'string' || 'compute' in w) return undefined;
    const every = 'hvc' in w ? w.hvc.every : w.mmio.every;
    const steps = every > 0 ? Math.max(1, Math.round(every / GUEST_COMPUTE_QUANTUM)) : 0;
    const stepCycles = steps > 0 ? Math.max(1, Math.round(every / steps)) : 0;
    if ('hvc' in w) return { kind: 'hvc', steps, stepCycles, onRoundTrip: new RunTrapProbes(this, pr, 'hvc') };
    if (w.mmio.exit === 'kernel') {
      return { kind: 'gicd-read', steps, stepCycles, onRoundTrip: new RunTrapProbes(this, pr, 'gicd-read') };
    }
    const onTrap = new RunTrapProbes(this, pr, 'mmio-write');
    return { kind: 'mmio-write', steps, stepCycles, ipa: GUEST_DOORBELL_IPA, onTrap };
  }

  private buildGuest(spec: Scenario['vms'][number], index: number, hooks: RunHooks): GuestKernel {
    const pr: VmProbes = {
      trapAt: new Array<number>(spec.vcpus).fill(-1),
      vectorAt: new Array<number>(spec.vcpus).fill(0),
      mmioKernel: { n: 0, sum: 0 },
    };
    this.probes.push(pr);
    const all = stepsForMode(this.s, this.mode).filter((x) => x.step === 'irqfd' && x.vm === spec.name);
    const steps = all.filter((st) => st.step === 'irqfd' && this.vmm.pciFunction(st.device) === undefined);
    const irqs: GuestExtraIrq[] = [];
    for (const st of steps) {
      if (st.step !== 'irqfd') continue;
      const l = this.platformLine(st.device, st.index);
      if (!l.viaEventfd) continue;
      if (this.s.workloads.some((w) => w.device === l.device && w.index === l.index && w.via !== 'eventfd'))
        this.notes.push(
          `${l.device}/${l.index}: line and eventfd workloads on one IRQ: the guest serves it as eventfd`,
        );
      irqs.push({
        intid: 32 + st.gsi!,
        trigger: l.trigger,
        target: 0,
        handler: new LedgerIrqHandler(`${l.device}.${l.index}.backend`, this, l, spec.guest.handlerCycles, index),
      });
    }
    const devices = steps.flatMap((st) => {
      if (st.step !== 'irqfd') throw new ModelError('unreachable');
      const l = this.platformLine(st.device, st.index);
      if (l.viaEventfd) return [];
      // guest_irq_entry: the driver's own tracepoint (traceGuest below)
      const probe = new RunLineProbes(this, l);
      return {
        device: l.hw,
        line: st.index,
        intid: 32 + st.gsi!,
        target: 0,
        handlerCycles: spec.guest.handlerCycles,
        assertedAt: probe,
        onLatency: probe,
      };
    });
    const lpis = new Map<number, MsiVectorState>();
    const its = this.guestItsDevices(all, spec.guest.handlerCycles, lpis);
    const v2 = this.host.irq.version === 'v2';
    const probes = new RunGuestProbes(this, pr);
    const g = new GuestKernel({
      ...(its.length > 0 ? { its: { devices: its } } : {}),
      engine: this.engine,
      ...guestGicOptions(this.host.irq, spec.guest.eoi),
      // the GICv3 guest driver has no completion probe
      ...(v2 ? { onVirqCompletion: probes } : {}),
      vcpus: spec.vcpus,
      name: spec.name,
      eoiMode: spec.guest.eoiMode,
      devices,
      irqs,
      workload: this.guestWorkload(spec.guest.workload),
      trapLoop: this.guestTrapLoop(pr, spec.guest.workload),
      onVectorEntry: probes,
    });
    this.ht?.traceGuest(g, lpis);
    hooks.onGuest?.(g, spec.name, this.mode);
    for (const r of spec.retarget)
      if (r.after !== undefined) this.plan.on(r.after, new RetargetAfter(g, this.engine, r));
    return g;
  }

  /**
   * The guest's ITS devices (itsDriver.ts): each PCI function wired into this VM, at its guest requester ID, with one
   * event per wired vector mapped to its LPI on vCPU 0, served by a LedgerIrqHandler.
   */
  private guestItsDevices(
    steps: readonly ScenarioStep[],
    handlerCycles: number,
    lpis: Map<number, MsiVectorState>,
  ): GuestItsDevice[] {
    const out: GuestItsDevice[] = [];
    for (const f of pciFunctions(this.s)) {
      const vectors = steps.flatMap((st) => (st.step === 'irqfd' && st.device === f.name ? [st.index] : []));
      const events = [...new Set(vectors)].map((k) => {
        const v = this.ledger.line(f.name, k) as MsiVectorState;
        lpis.set(f.lpiBase + k, v);
        const handler = new LedgerIrqHandler(`${v.device}.msi${v.index}`, this, v, handlerCycles, -1);
        return { eventId: k, lpi: f.lpiBase + k, handler };
      });
      if (events.length > 0) out.push({ deviceId: f.guestDeviceId, events });
    }
    return out;
  }

  // ---- IRQ events ----------------------------------------------------------------------------------------------

  private line(device: string, index: number): LedgerEntry {
    const l = this.ledger.line(device, index);
    if (l === undefined) throw new ModelError(`no line ${device}/${index}`);
    return l;
  }

  /** A platform device's wired line (the schema sends only those through irqfd backends and eventfd workloads). */
  private platformLine(device: string, index: number): LineState {
    const l = this.line(device, index);
    if (l.kind !== 'line') throw new ModelError(`${device}/${index} is an MSI vector, not a wired line`);
    return l;
  }

  raise(l: LedgerEntry): void {
    this.ledger.raise(l);
    this.plan.notify();
  }

  /**
   * A `via: eventfd` event: the VMM's I/O thread (on CPU 0, the VMM's CPU) writes 1 to the irqfd's eventfd —
   * write(2) → eventfd_write → irqfd_wakeup → kvm_vgic_inject_irq → kick the vCPU. The event's time (for
   * `latency.toGuest` and probe `ioLatencyIn`) is the first step of that write(2).
   */
  signalEventfd(l: LineState): void {
    const w = this.vmm.wiring(l.device, l.index);
    if (this.ledger.signal(l, w !== undefined, this.ioThread?.busy === true)) {
      if (this.ioThread === null) {
        this.ioThread = this.p.thread('iothread', 0);
        this.ioBuf = this.p.mem.alloc(8);
        this.p.mem.view(this.ioBuf, 8).setBigUint64(0, 1n, true);
      }
      const fd = w!.trigger;
      this.ioThread.submit(`write(${fd}) ${l.device}/${l.index}`, new BackendWrite(l, this.p, fd, this.ioBuf));
    }
    this.plan.notify();
  }

  /**
   * A LedgerIrqHandler of VM `vmIndex` was entered on `vcpu`. An MSI vector's: the ledger's delivery (latency = the
   * MSI's send → here; its guest_irq_entry is the GICv3 driver's tracepoint, GuestTraceHooks.lpiIrq). A `via:
   * eventfd` line's: probe `ioLatencyIn` = the backend's write(2) starts → this vCPU entered its IRQ vector for the
   * vIRQ, then its guest_irq_entry (no guest driver emits it) and the delivery.
   */
  handlerEntered(l: LedgerEntry, vcpu: number, vmIndex: number): void {
    const now = this.engine.now;
    if (l.kind === 'msi') {
      this.served(l, now - l.lastAssertAt);
      return;
    }
    const vectorAt = this.probes[vmIndex]!.vectorAt[vcpu] ?? now;
    if (l.outstanding > 0 || l.orphanPending > 0) this.probe('ioLatencyIn', vectorAt - l.lastAssertAt);
    this.ht?.guestIrqEntry(this.vmm.vms[vmIndex]!.kvmVm.vcpus[vcpu]?.runTask ?? null, vcpu, l.intid, l.seq);
    this.served(l, now - l.lastAssertAt);
  }

  /** A guest handler entry served `l`, `cycles` after its raise. */
  served(l: LedgerEntry, cycles: number): void {
    this.ledger.delivered(l, cycles);
    this.plan.notify();
  }

  // ---- workloads -----------------------------------------------------------------------------------------------

  private armWorkloads(t0: number): void {
    this.s.workloads.forEach((w, wi) => {
      const timer = new WorkloadTimer(this, w, wi, this.line(w.device, w.index), t0 + (w.until ?? this.s.duration));
      if (w.after !== undefined) this.plan.on(w.after, timer);
      else timer.start(t0);
    });
  }

  // ---- the run -------------------------------------------------------------------------------------------------

  run(hooks: RunHooks): ModeRun {
    const s = this.s;
    const engine = this.engine;
    hooks.onHost?.(this.host, this.mode);
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
    const vmm = this.vmm;
    vmm.createVms((spec, index) => this.buildGuest(spec, index, hooks));
    const exec = (st: ScenarioStep) => {
      vmm.exec(st);
      hooks.afterStep?.(st, this.host, this.mode);
    };
    // QEMU wires a PCI function's MSIs when its guest driver enables them (vfio_pci_write_config → vfio_msi_enable),
    // after the guest's ITS driver has mapped the device and its events at boot
    this.plan.runLeading(exec, (st) => st.step === 'irqfd' && vmm.pciFunction(st.device) !== undefined);
    for (const v of vmm.vms)
      if (!v.destroyed)
        vmm.startVcpus(
          v,
          (i) => `CPU ${i}/KVM`,
          (fd, i) => ({
            what: `KVM_RUN loop ${v.name}/vcpu${i}`,
            body: new KvmCpuExec(this, this.p, fd, this.probes[v.index]!, v, i),
          }),
        );
    engine.runUntil(() => vmm.vms.every((v) => v.destroyed || v.guest.booted), 'the guests to boot');
    // the MSI wiring halted the guests (irqbypass's stop/start bracket): their vCPUs re-enter before the clock starts
    if (this.plan.runBooted(exec) > 0)
      engine.runUntil(
        () =>
          vmm.vms.every((v) =>
            v.threads.every((th) => th.task.state === TASK_IN_GUEST || th.task.state === TASK_BLOCKED),
          ),
        'the vCPUs to resume after the MSI wiring',
      );
    // The scenario clock starts here: VMs built, leading steps done, guests booted and their MSIs enabled (a device
    // does not interrupt before its driver is up). `at`, workload times and the duration count from t0.
    const t0 = engine.now;
    this.t0 = t0;
    this.window.openNow();
    const end = t0 + s.duration;
    this.armWorkloads(t0);
    for (const v of vmm.vms) {
      for (const r of v.spec.retarget) {
        if (r.after === undefined) v.guest.scheduleRetarget({ at: t0 + (r.at ?? 0), intid: r.intid, target: r.vcpu });
      }
    }
    this.plan.runRest(t0, s.duration, exec);
    if (engine.now < end) engine.run(end - engine.now);
    // workloads have stopped: let IRQs still in flight reach the guest (bounded) before the VMM tears down
    const drainEnd = engine.now + Math.round(s.host.hz / 1000);
    if (this.ledger.inFlight()) {
      try {
        engine.runUntil(() => !this.ledger.inFlight() || engine.now >= drainEnd, 'in-flight IRQs to be delivered');
      } catch (e) {
        if (!(e instanceof ModelError)) throw e;
      }
    }
    this.window.closeNow();
    if (s.teardown) {
      for (const v of vmm.vms) vmm.destroy(v);
      if (!this.p.exited) this.p.exit();
      engine.settle();
    }
    const metrics = this.window.finish(this.c, engine.now - t0);
    this.ledger.settle(metrics);
    this.checkProbeSamples(metrics);
    this.probes.forEach((pr, i) => {
      const m = pr.mmioKernel;
      if (m.n > 0)
        this.notes.push(
          `${vmm.vms[i]!.name}: ${m.n} GICD reads emulated in the kernel, mean round trip ${Math.round(m.sum / m.n)} cycles (interrupt-controller trap; no Metrics probe)`,
        );
    });
    for (const msg of this.host.checkInvariants({ teardown: s.teardown })) {
      this.violations.push({ invariant: invariantId(msg), message: msg, atCycles: engine.now });
    }
    engine.observer = null;
    this.report(1);
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
    const f = this.traceFormat;
    if (f === 'perfetto') return { trace: { format: f, data: writeChromeJson(tr, { hz, cpus }) } };
    return { trace: { format: f, data: writeText(tr, { hz, cpus, format: f === 'report' ? 'report' : 'tracefs' }) } };
  }
}

/**
 * A workload's device events: an engine timer that raises its line (or, `via: eventfd`, has the I/O backend signal
 * the line's irqfd) at the workload's times, from `start` (its `after` event: when that happens) to `until`.
 */
class WorkloadTimer implements TimerHandler, PlanListener {
  readonly name: string;
  private readonly rng: Prng;
  private n = 0;
  private inBurst = 0;
  private burstStart = 0;

  constructor(
    private readonly runner: ModeRunner,
    private readonly w: ScenarioWorkload,
    wi: number,
    private readonly l: LedgerEntry,
    private readonly until: number,
  ) {
    this.name = `workload${wi}`;
    this.rng = runner.engine.random.stream(this.name);
  }

  start(base: number): void {
    const t0 = base + this.w.start;
    this.burstStart = t0;
    if (t0 <= this.until) this.runner.engine.at(t0, this);
  }

  eventHappened(): void {
    this.start(this.runner.engine.now);
  }

  fire(): void {
    const w = this.w;
    const l = this.l;
    this.n++;
    this.inBurst++;
    if (l.kind === 'line' && w.via === 'eventfd') this.runner.signalEventfd(l);
    else this.runner.raise(l);
    if (w.count !== undefined && this.n >= w.count) return;
    const engine = this.runner.engine;
    const t = this.next(engine.now);
    if (t <= this.until) engine.at(t, this);
  }

  private next(t: number): number {
    const w = this.w;
    switch (w.kind) {
      case 'periodic':
        return t + w.period;
      case 'poisson': {
        const mean = w.meanInterval ?? this.runner.hz / w.rate!;
        return t + Math.max(1, Math.round(this.rng.exponential(mean)));
      }
      case 'burst':
        if (this.inBurst < w.size) return t + w.spacing;
        this.inBurst = 0;
        this.burstStart += w.every;
        return this.burstStart;
    }
  }
}

/** A guest's retargeting action that waits for a plan event: due `delay` after it. */
class RetargetAfter implements PlanListener {
  constructor(
    private readonly g: GuestKernel,
    private readonly engine: Engine,
    private readonly r: Scenario['vms'][number]['retarget'][number],
  ) {}

  eventHappened(): void {
    const r = this.r;
    this.g.scheduleRetarget({ at: this.engine.now + (r.delay ?? 0), intid: r.intid, target: r.vcpu });
  }
}

/**
 * The I/O backend's write(2) of 1 to a `via: eventfd` line's irqfd eventfd (ModeRunner.signalEventfd): its first step
 * is the event's time (`latency.toGuest`, probe `ioLatencyIn`).
 */
class BackendWrite extends Frame<number> {
  constructor(
    private readonly l: LineState,
    private readonly p: Process,
    private readonly fd: number,
    private readonly buf: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc === 1) return this.return_(sent as number);
    this.l.lastAssertAt = this.p.kernel.engine.now;
    this.pc = 1;
    return this.call(this.p.sysWrite(this.fd, this.buf, 8));
  }
}

/** KvmCpuExec resumes here: KVM_RUN returned, it failed (an errno), or the thread enters it. */
const PC_KVM_RUN = 0;
const PC_RETURNED = 1;
const PC_FAILED = 2;

/**
 * QEMU's kvm_cpu_exec loop on a vCPU thread: KVM_RUN until asked to stop; EINTR re-enters unless stopping. A
 * KVM_EXIT_MMIO is a doorbell write the VMM completes by simply re-entering (writes need no data back); when the
 * guest's trap loop issued it, probe `ioLatencyOut` = the guest's store → this thread back in user space with the
 * exit (the end of the syscall-exit step: the cycles until the VMM's code runs).
 */
class KvmCpuExec extends Frame<number> {
  private exitReasonAt = -1;

  constructor(
    private readonly runner: ModeRunner,
    private readonly p: Process,
    private readonly fd: number,
    private readonly pr: VmProbes,
    private readonly v: VmmVm,
    private readonly idx: number,
  ) {
    super();
  }

  protected step(): Boundary {
    switch (this.pc) {
      case PC_KVM_RUN:
        this.exitReasonAt = kvmRunAddress(this.p, this.fd) + kvmRun.offsetof('exit_reason');
        return this.kvmRun();
      case PC_RETURNED: {
        const reason = this.p.mem.view(this.exitReasonAt, 4).getUint32(0, true);
        const at = this.pr.trapAt[this.idx]!;
        if (reason === KVM_EXIT_MMIO && at >= 0) {
          this.pr.trapAt[this.idx] = -1;
          const t = currentOrNull();
          const engine = this.p.kernel.engine;
          const end = t !== null ? engine.cpus[t.cpu]!.readyAt : engine.now;
          this.runner.probe('ioLatencyOut', end - at);
        }
        return this.again();
      }
      default: // PC_FAILED: KVM_RUN returned EINTR (a signal)
        return this.again();
    }
  }

  private kvmRun(): Boundary {
    this.pc = PC_RETURNED;
    return this.call(this.p.sysIoctl(this.fd, KVM_RUN, 0));
  }

  /** Leave when asked to stop, else re-enter KVM_RUN. */
  private again(): Boundary {
    return this.v.stopping ? this.return_(0) : this.kvmRun();
  }

  override next(sent?: unknown): IteratorResult<Op, number> {
    try {
      return super.next(sent);
    } catch (e) {
      if (!(e instanceof ErrnoError) || e.errno !== 'EINTR') throw e;
      this.pc = PC_FAILED;
      return this.next(undefined);
    }
  }
}
