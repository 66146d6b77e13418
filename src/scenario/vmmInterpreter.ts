/**
 * The VMM of a scenario: the one interpreter of its `vmm` steps, shared by the timed run (runner.ts) and the checker
 * (src/check/scenarioCheck.ts). It holds what QEMU holds — per VM the fds of /dev/kvm, the VM, the vGIC, the vCPUs
 * and the kvm-vfio device; the VFIO containers, groups and devices it opened; the irqfds it wired and the IRQs it
 * assigned — and turns each step into the ioctl sequence of vmm.ts. `exec` runs a step now, its calls one by one on
 * the process's main thread; `plan` lays out the calls of a step for a VMM thread to run later (vmmCall.ts
 * VmmScript), with the fds as they are now.
 */
import { ErrnoError, errno } from '../abi/errno.js';
import { VGIC_MAX_NR_IRQS } from '../abi/kvm.js';
import { VFIO_GROUP_GET_DEVICE_FD } from '../abi/vfio.js';
import type { GuestKernel, GuestKernelOptions } from '../guest/guestKernel.js';
import type { HostIrq } from '../host/irq/boot.js';
import type { Process, UThread } from '../host/process.js';
import type { GuestFactory, GuestVcpuEnv } from '../kvm/guest.js';
import type { KvmVm } from '../kvm/vm.js';
import type { Host, HostOptions } from '../machine.js';
import { ModelError } from '../sim/errors.js';
import type { Call } from '../sim/task.js';
import { hostLpiOptions, type PciFunction, pciFunctions } from './pciFunctions.js';
import { BOUND_FD_RE, FDREF_RE, firstMsiGsi, type Mode, type Scenario, type ScenarioStep } from './schema.js';
import {
  createdFd,
  createKvmVfio,
  createQemuVm,
  createVits,
  type IrqfdWiring,
  kvmVfioGroupAdd,
  kvmVfioSupported,
  type MsiRoute,
  msiIrqIndex,
  openVfioDevice,
  type QemuVm,
  RawIoctlError,
  setGsiRouting,
  signalThread,
  unwireIrqfd,
  unwireMsi,
  wireIrqfd,
  wireMsi,
} from './vmm.js';
import { closeCall, forwardCall, groupDelCall, rawIoctlCall, runCall, submitTask, type VmmCall } from './vmmCall.js';

type VmSpec = Scenario['vms'][number];
type IoctlStep = Extract<ScenarioStep, { step: 'ioctl' }>;

/**
 * The GIC a scenario's guest kernel drives: irq-gic-v3.c over the ICV_* interfaces on a GICv3 host (it always
 * completes its IRQs: no `eoi` policy, no completion probe), irq-gic.c over the GICVs on a GICv2 host.
 */
export function guestGicOptions(irq: HostIrq, eoi: GuestEoi | undefined): GuestGicOptions {
  return irq.version === 'v3' ? { gicv3: irq.gic } : { gic: irq.gic, ...(eoi !== undefined ? { eoi } : {}) };
}

export type GuestGicOptions = Pick<GuestKernelOptions, 'gic' | 'gicv3' | 'eoi'>;
type GuestEoi = GuestKernelOptions['eoi'];

/**
 * The machine a scenario's `host` and `devices` describe, as createHost options for a run in `mode` (its GICv4.1
 * vPEs only forwarded: pciFunctions.ts hostLpiOptions); the caller adds the seed and what its driver needs (the timed
 * run: clock and costs; the checker: the kvm-vfio variant and IRQ numbering).
 */
export function scenarioHostOptions(s: Scenario, mode: Mode = 'forwarded'): HostOptions {
  const fns = pciFunctions(s);
  return {
    ...hostLpiOptions(s, mode),
    ...(fns.length > 0
      ? {
          msiDevices: fns.map((f) => ({
            name: f.name,
            iommuGroup: f.iommuGroup,
            deviceId: f.hostDeviceId,
            vectors: f.vectors,
          })),
        }
      : {}),
    cpus: s.host.cpus,
    nrIrqs: s.host.gic.nrIrqs,
    nrLrs: s.host.gic.nrLrs,
    ...(s.host.gic.nrEspis > 0 ? { nrEspis: s.host.gic.nrEspis } : {}),
    gic: s.host.gic.version,
    devices: s.devices
      .filter((d) => d.bus !== 'pci')
      .map((d) => ({
        name: d.name,
        iommuGroup: d.iommuGroup,
        reset: d.reset,
        irqs: d.irqs.map((i) => ({ intid: i.intid, trigger: i.trigger })),
      })),
  };
}

/** One VM as the VMM holds it. */
export interface VmmVm {
  readonly name: string;
  readonly index: number;
  readonly spec: VmSpec;
  readonly fds: QemuVm;
  readonly kvmVm: KvmVm;
  readonly guest: GuestKernel;
  kvmVfio: number;
  /** The vITS fd (a VM a PCI function is passed to), -1 if none. */
  its: number;
  /** The MSI routes the VMM keeps in the VM's GSI routing table (QEMU's kvm_state->irq_routes). */
  readonly msiRoutes: MsiRoute[];
  readonly threads: UThread[];
  /** The vCPU threads are asked to leave their KVM_RUN loops. */
  stopping: boolean;
  destroyed: boolean;
  vmClosed: boolean;
}

/** A VFIO device the VMM opened for a VM: its container, group and device fds (-1 once closed). */
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
  /** The PCI function whose MSI vector `index` this is, or null (a platform IRQ). */
  readonly fn: PciFunction | null;
}

/** What the VMM's user learns as the steps run. */
export interface VmmEvents {
  /** A step failed with an errno (`what` names it); the VMM goes on. */
  failed(what: string, e: ErrnoError): void;
  note(msg: string): void;
  /** An irqfd now carries line `index` of `device` into `vm`. */
  wired?(vm: VmmVm, device: string, index: number, w: IrqfdWiring): void;
  /** The lines of `device` (every device's when null) lost their VM's irqfd; `vmGone`: with the VM, mid-run. */
  unowned?(device: string | null, vmGone: boolean): void;
  /** A raw `ioctl` step returned (`got` 'ok') or failed with errno `got`. */
  ioctlOutcome?(st: IoctlStep, what: string, got: string, detail: string): void;
  /** A raw `ioctl` step whose argument cannot be built (the schema rejects these: a defensive check). */
  badIoctl?(what: string, e: RawIoctlError): void;
}

/** KVM's guest factory for a VMM's VMs: each vCPU gets the guest kernel of its VM (plain data a machine copy carries). */
class VmmGuests implements GuestFactory {
  constructor(private readonly vms: readonly VmmVm[]) {}

  createGuest(env: GuestVcpuEnv): ReturnType<GuestFactory['createGuest']> {
    const v = this.vms.find((x) => x.kvmVm === env.vm);
    if (v === undefined) throw new ModelError(`no guest kernel for ${env.vm}`);
    return v.guest.createGuest(env);
  }
}

export class VmmInterpreter {
  readonly vms: VmmVm[] = [];
  private readonly opened: OpenDevice[] = [];
  private readonly wirings: Wiring[] = [];
  private readonly assigned: { vm: string; device: string; index: number; gsi: number }[] = [];
  /** The fds raw ioctl steps created, by their `as` name (absent: that call failed, or has not run yet). */
  private readonly bound = new Map<string, number>();
  private kvmVfioOk = true;
  private readonly fns: readonly PciFunction[];
  /** The PCI functions whose MSI index the VMM has enabled (the first vector wired). */
  private readonly msiEnabled = new Set<string>();

  constructor(
    readonly host: Host,
    readonly p: Process,
    private readonly s: Scenario,
    private readonly ev: VmmEvents,
  ) {
    host.kvm.guestFactory = new VmmGuests(this.vms);
    this.fns = pciFunctions(s);
  }

  /** The PCI function named `device`, if it is one. */
  pciFunction(device: string): PciFunction | undefined {
    return this.fns.find((f) => f.name === device);
  }

  /** Each VM of the scenario, in file order, built the QEMU way; `guest` gives its guest kernel just before. */
  createVms(guest: (spec: VmSpec, index: number) => GuestKernel): void {
    this.s.vms.forEach((spec, index) => {
      const g = guest(spec, index);
      // the guest's GIC as big as the host's, up to what a vGIC-v2 takes
      const fds = createQemuVm(this.p, {
        vcpus: spec.vcpus,
        nrIrqs: Math.min(this.s.host.gic.nrIrqs, VGIC_MAX_NR_IRQS),
        gic: this.host.irq.version,
      });
      // hw/arm/virt.c create_its after create_gic, when the machine has an MSI controller for its PCI functions
      const msi = this.s.vmm.some(
        (st) => st.step === 'open-device' && st.vm === spec.name && this.pciFunction(st.device),
      );
      this.vms.push({
        name: spec.name,
        index,
        spec,
        fds,
        kvmVm: this.host.kvm.vms.at(-1)!,
        guest: g,
        kvmVfio: -1,
        its: msi ? createVits(this.p, fds.vm) : -1,
        msiRoutes: [],
        threads: [],
        stopping: false,
        destroyed: false,
        vmClosed: false,
      });
    });
  }

  vm(name: string | undefined): VmmVm {
    const v = name === undefined ? this.vms[0] : this.vms.find((x) => x.name === name);
    if (v === undefined) throw new ModelError(`no VM ${name}`);
    return v;
  }

  /**
   * One thread per vCPU (`name(i)`), pinned as the VM's `pinning` says (else CPU i + 1), running the task `run`
   * gives for its vCPU fd (`what` names it in errors).
   */
  startVcpus(
    v: VmmVm,
    name: (i: number) => string,
    run: (fd: number, i: number) => { what: string; body: Call<number> },
  ): void {
    v.fds.vcpus.forEach((fd, i) => {
      const th = this.p.thread(name(i), v.spec.pinning[i] ?? (i + 1) % this.host.engine.cpus.length);
      v.threads.push(th);
      const { what, body } = run(fd, i);
      submitTask(th, what, body);
    });
  }

  /** Stop a VM's vCPUs as QEMU does (pause_all_vcpus: a signal to each vCPU thread, which leaves KVM_RUN). */
  stopVcpus(v: VmmVm): void {
    v.stopping = true;
    for (const th of v.threads) signalThread(this.host, th, this.p.main.cpu);
    this.host.engine.runUntil(() => v.threads.every((th) => !th.busy), `${v.name}: vCPU threads to leave KVM_RUN`);
  }

  // ---- a step now ----------------------------------------------------------------------------------------------

  /** Run one step now; an errno it ends with goes to `failed`. */
  exec(st: ScenarioStep): void {
    const v = this.vm(st.vm);
    try {
      switch (st.step) {
        case 'open-device':
          this.openDevice(v, st.device);
          break;
        case 'irqfd': {
          const o = this.openFd(v.name, st.device);
          const fn = this.pciFunction(st.device) ?? null;
          const w =
            fn !== null
              ? this.wireMsi(v, o.device, fn, st.index, st.gsi!)
              : wireIrqfd(this.p, v.fds.vm, o.device, st.index, st.gsi!, st.resample!);
          this.wirings.push({ ...w, vm: v.name, device: st.device, index: st.index, fn });
          this.ev.wired?.(v, st.device, st.index, w);
          break;
        }
        case 'assign':
        case 'deassign': {
          this.openFd(v.name, st.device);
          if (v.kvmVfio < 0) throw errno('ENODEV', `${st.step}: the VM has no kvm-vfio device`);
          this.run(this.plan(st));
          const i = this.assigned.findIndex((a) => a.vm === v.name && a.device === st.device && a.index === st.index);
          if (st.step === 'assign')
            this.assigned.push({ vm: v.name, device: st.device, index: st.index, gsi: st.gsi! });
          else if (i >= 0) this.assigned.splice(i, 1);
          break;
        }
        case 'close':
          this.close(v, st);
          break;
        case 'destroy':
          this.destroy(v, true);
          break;
        case 'die':
          this.die(st.order, st.window);
          break;
        case 'ioctl':
          this.rawIoctl(v, st);
          break;
      }
    } catch (e) {
      this.failed(`${st.step}${'device' in st && st.device !== undefined ? ` ${st.device}` : ''}`, e);
    }
  }

  private failed(what: string, e: unknown): void {
    if (!(e instanceof ErrnoError)) throw e;
    this.ev.failed(what, e);
  }

  /** The calls one by one; the first that fails ends the step (its ErrnoError propagates). */
  private run(calls: readonly VmmCall[]): void {
    for (const c of calls) runCall(this.p, c);
  }

  private openDevice(v: VmmVm, name: string): void {
    const spec = this.s.devices.find((d) => d.name === name)!;
    const p = this.p;
    const groupOf = (n: string) => this.s.devices.find((d) => d.name === n)?.iommuGroup;
    const sameGroup = this.opened.find((o) => o.vm === v.name && groupOf(o.name) === spec.iommuGroup);
    let o: OpenDevice;
    if (sameGroup !== undefined) {
      const device = p.ioctl(sameGroup.group, VFIO_GROUP_GET_DEVICE_FD, p.mem.writeString(name));
      o = { vm: v.name, name, container: sameGroup.container, group: sameGroup.group, device, groupAdded: false };
      this.opened.push(o);
      return;
    }
    o = { vm: v.name, name, ...openVfioDevice(p, spec.iommuGroup, name), groupAdded: false };
    this.opened.push(o);
    // hw/vfio: the kvm-vfio device is created at the first group and told about each group
    if (v.kvmVfio < 0 && this.kvmVfioOk) {
      if (kvmVfioSupported(p, v.fds.vm)) v.kvmVfio = createKvmVfio(p, v.fds.vm);
      else {
        this.kvmVfioOk = false;
        this.ev.note('KVM_DEV_TYPE_VFIO is not available (KVM_CREATE_DEVICE_TEST fails): no KVM_DEV_VFIO_GROUP_ADD');
      }
    }
    if (v.kvmVfio >= 0) {
      try {
        kvmVfioGroupAdd(p, v.kvmVfio, o.group);
        o.groupAdded = true;
      } catch (e) {
        this.failed(`KVM_DEV_VFIO_GROUP_ADD ${name}`, e);
      }
    }
  }

  /**
   * MSI vector `vector` of `fn` to the guest's LPI for it: the message is the one the guest's ITS driver composed
   * (its_irq_compose_msi_msg) — QEMU reads it from the emulated MSI capability the guest programmed (msi_get_message);
   * the model has no config space, so the VMM takes it from the guest driver.
   */
  private wireMsi(v: VmmVm, device: number, fn: PciFunction, vector: number, gsi: number): IrqfdWiring {
    const m = v.guest.its?.msis.find((x) => x.deviceId === fn.guestDeviceId && x.eventId === vector);
    if (m === undefined) throw new ModelError(`${fn.name} vector ${vector}: the guest has no MSI for it`);
    const nrSpis = firstMsiGsi(this.s.host.gic.nrIrqs);
    const enable = !this.msiEnabled.has(fn.name);
    const msi = { index: msiIrqIndex(fn.msix), vector, vectors: fn.vectors, enable };
    const w = wireMsi(this.p, v.fds.vm, device, msi, gsi, () => {
      v.msiRoutes.push({ gsi, address: m.address, data: m.data, devid: fn.guestDeviceId });
      setGsiRouting(this.p, v.fds.vm, nrSpis, v.msiRoutes);
    });
    this.msiEnabled.add(fn.name);
    return w;
  }

  /** The device `device` as `vm` opened it; EBADF when its device fd is closed (or, `needDeviceFd` false, never opened). */
  private openFd(vm: string, device: string, needDeviceFd = true): OpenDevice {
    const o = this.opened.find((x) => x.vm === vm && x.name === device && (!needDeviceFd || x.device >= 0));
    if (o === undefined) throw errno('EBADF', `${device}: no open device fd in ${vm} (closed earlier)`);
    return o;
  }

  private close(v: VmmVm, st: Extract<ScenarioStep, { step: 'close' }>): void {
    const { what, device } = st;
    if (what === 'device' || what === 'group') {
      const o = this.openFd(v.name, device!, what !== 'group');
      this.ev.unowned?.(device!, false);
      if (what === 'group' && o.group < 0) throw errno('EBADF', `the group of ${device} is already closed`);
      this.run(this.plan(st));
      if (what === 'device') o.device = -1;
      else {
        o.groupAdded = false;
        o.group = -1;
      }
    } else if (what === 'kvm-vfio') {
      this.run(this.plan(st));
      v.kvmVfio = -1;
    } else {
      this.run(this.plan(st));
      v.vmClosed = true;
    }
  }

  /**
   * A raw `ioctl` step: resolve the fd reference, lay the argument out in user memory, call, and report the outcome
   * (`ioctlOutcome`), or `badIoctl` when the argument cannot be built.
   */
  private rawIoctl(v: VmmVm, st: IoctlStep): void {
    const req = typeof st.request === 'number' ? `0x${(st.request >>> 0).toString(16)}` : st.request;
    const what = `ioctl(${st.fd}, ${req})`;
    let calls: readonly VmmCall[];
    try {
      calls = this.plan(st, v);
    } catch (e) {
      if (!(e instanceof RawIoctlError)) throw e;
      if (this.ev.badIoctl === undefined) throw e;
      this.ev.badIoctl(what, e);
      return;
    }
    let got = 'ok';
    let detail: string;
    try {
      detail = `returned ${runCall(this.p, calls[0]!, (ret) => this.bind(calls[0]!, ret))}`;
    } catch (e) {
      if (!(e instanceof ErrnoError)) throw e;
      got = e.errno;
      detail = e.message;
    }
    this.ev.ioctlOutcome?.(st, what, got, detail);
  }

  /** A call that binds a name (`as`) returned `ret`: the name is now the fd it created (createdFd.ts). */
  bind(c: VmmCall, ret: number): void {
    if (c.kind === 'ioctl' && c.as !== undefined) this.bound.set(c.as, createdFd(this.p, c.request, ret, c.arg));
  }

  // ---- a step for later ----------------------------------------------------------------------------------------

  /**
   * The calls of an assign, deassign, close or raw ioctl step, laid out now with the fds as they are now (a device
   * not open is fd -1: the call fails with EBADF when it runs). Nothing is recorded: the step has not happened.
   */
  plan(st: ScenarioStep, v = this.vm(st.vm)): VmmCall[] {
    const p = this.p;
    const opened = (device: string) =>
      this.opened.find((x) => x.vm === v.name && x.name === device && x.device >= 0) ??
      this.opened.find((x) => x.vm === v.name && x.name === device) ??
      this.opened.find((x) => x.name === device);
    switch (st.step) {
      case 'assign':
      case 'deassign':
        return [forwardCall(p, st.step, v.kvmVfio, opened(st.device)?.device ?? -1, st.index, st.gsi!)];
      case 'close': {
        if (st.what === 'kvm-vfio') return [closeCall(v.kvmVfio)];
        if (st.what === 'vm') return [closeCall(v.fds.vm)];
        const o = opened(st.device!);
        if (st.what === 'device') return [closeCall(o?.device ?? -1)];
        const group = o?.group ?? -1;
        const del = o?.groupAdded && v.kvmVfio >= 0 ? [groupDelCall(p, v.kvmVfio, group)] : [];
        return [...del, closeCall(group)];
      }
      case 'ioctl': {
        const resolve = (ref: string) => this.fdRef(v, ref);
        return [rawIoctlCall(p, { ...st, fd: resolve(st.fd) }, resolve, st.failNth ?? 0, st.as)];
      }
      default:
        throw new ModelError(`a '${st.step}' step has no call form`);
    }
  }

  /**
   * The fd a reference names, as the VMM holds it now; -1 (with a note) when it is not open (never opened, closed, or
   * its VM destroyed), so the call fails with EBADF as a stale fd would. Unqualified `vm`, `kvm`, `kvm-vfio`,
   * `vcpu:<i>` and device references are the step's VM's.
   */
  fdRef(v: VmmVm, ref: string): number {
    const m = FDREF_RE.exec(ref);
    if (m === null && !BOUND_FD_RE.test(ref))
      throw new RawIoctlError(`'${ref}' is neither a uapi constant (KVM_*, VFIO_*) nor an fd reference`);
    const [, kind, name, idx] = m ?? [];
    let fd = m === null ? (this.bound.get(ref) ?? -1) : -1; // a name bound by `as` (none if that call failed)
    switch (kind) {
      case 'kvm':
      case 'vm':
      case 'kvm-vfio': {
        const w = this.vm(name ?? v.name);
        if (kind === 'kvm') fd = w.destroyed ? -1 : w.fds.kvm;
        else if (kind === 'vm') fd = w.vmClosed ? -1 : w.fds.vm;
        else fd = w.kvmVfio;
        break;
      }
      case 'vcpu': {
        const w = idx === undefined ? v : this.vm(name);
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
        fd = w === undefined || this.vm(w.vm).destroyed ? -1 : kind === 'irqfd' ? w.trigger : w.resample;
        break;
      }
    }
    if (fd < 0) this.ev.note(`ioctl step: '${ref}' names no open fd (now): passing -1`);
    return fd;
  }

  /** The irqfd wired for `device`/`index` (its eventfds), if any. */
  wiring(device: string, index: number): IrqfdWiring | undefined {
    return this.wirings.find((x) => x.device === device && x.index === index);
  }

  // ---- the end of a VM or of the VMM -----------------------------------------------------------------------------

  /**
   * QEMU shutdown of one VM: stop the vCPUs, deassign forwarded IRQs, take the irqfds down, close each device, its
   * group (KVM_DEV_VFIO_GROUP_DEL first) and container, then the kvm-vfio, vCPU, vGIC and VM fds. `midRun`: a
   * `destroy` step, while the workloads still run (the lines' raises in flight are orphaned).
   */
  destroy(v: VmmVm, midRun = false): void {
    if (v.destroyed || this.p.exited) return;
    v.destroyed = true;
    const p = this.p;
    const guard = (what: string, f: () => unknown) => {
      try {
        f();
      } catch (e) {
        this.failed(`destroy ${v.name}: ${what}`, e);
      }
    };
    this.stopVcpus(v);
    for (const a of this.assigned.filter((x) => x.vm === v.name)) {
      const o = this.opened.find((x) => x.vm === v.name && x.name === a.device);
      if (o !== undefined && o.device >= 0 && v.kvmVfio >= 0)
        guard(`deassign ${a.device}/${a.index}`, () =>
          this.run([forwardCall(p, 'deassign', v.kvmVfio, o.device, a.index, a.gsi)]),
        );
    }
    for (const w of this.wirings.filter((x) => x.vm === v.name && x.fn === null)) {
      const o = this.opened.find((x) => x.vm === v.name && x.name === w.device);
      if (o !== undefined && o.device >= 0 && !v.vmClosed)
        guard(`irqfd off ${w.device}/${w.index}`, () => unwireIrqfd(p, v.fds.vm, o.device, w.index, w));
    }
    for (const fn of this.fns) {
      const ws = this.wirings.filter((x) => x.vm === v.name && x.fn === fn);
      const o = this.opened.find((x) => x.vm === v.name && x.name === fn.name);
      if (ws.length > 0 && o !== undefined && o.device >= 0 && !v.vmClosed)
        guard(`MSIs off ${fn.name}`, () => unwireMsi(p, v.fds.vm, o.device, msiIrqIndex(fn.msix), ws));
    }
    for (const d of new Set(this.opened.filter((o) => o.vm === v.name).map((o) => o.name)))
      this.ev.unowned?.(d, midRun);
    const groups = new Set<number>();
    const containers = new Set<number>();
    for (const o of this.opened.filter((x) => x.vm === v.name)) {
      if (o.device >= 0) guard(`close device ${o.name}`, () => p.close(o.device));
      o.device = -1;
      if (o.group >= 0 && !groups.has(o.group)) {
        groups.add(o.group);
        if (o.groupAdded && v.kvmVfio >= 0)
          guard(`KVM_DEV_VFIO_GROUP_DEL ${o.name}`, () => this.run([groupDelCall(p, v.kvmVfio, o.group)]));
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
    if (v.its >= 0) guard('close vITS', () => p.close(v.its));
    v.its = -1;
    guard('close vGIC', () => p.close(v.fds.vgic));
    if (!v.vmClosed) guard('close VM', () => p.close(v.fds.vm));
    v.vmClosed = true;
    guard('close /dev/kvm', () => p.close(v.fds.kvm));
  }

  /**
   * The `die` step: the VMM is killed (SIGKILL → exit_group). At a seeded random instant in [0, window), every
   * thread gets the fatal signal; `fd` order is Linux's (do_exit → exit_files → close_files, fd order, releases via
   * task_work); `random` closes every fd in a seeded random permutation first (each close(2) releasing at once),
   * which covers every order in which the objects can lose their last reference.
   */
  private die(order: 'fd' | 'random', window: number): void {
    const engine = this.host.engine;
    const rng = engine.random.stream('vmm-die');
    if (window > 0) engine.run(rng.below(window));
    for (const v of this.vms) {
      v.stopping = true;
      v.destroyed = true;
    }
    this.ev.unowned?.(null, true);
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
}
