/**
 * A scenario file under the checker: the YAML scenario becomes a CheckableScenario, with no per-file code.
 *
 * - Set-up (run under the TimedScheduler until quiescent, not explored): the host, devices and VM of the file, the
 *   VMM steps up to the first one that waits (`at` or `after`), the vCPU threads in KVM_RUN.
 * - Concurrent phase (explored): the remaining VMM steps, in order, on one VMM thread (CPU 0); per device line that
 *   a workload drives, one hardware event agent asserting it `raises` times (level: assert, edge: a pulse); the
 *   vCPUs running the guest.
 * - Time is abstracted: `at`, `after`, `delay`, workload periods and costs only order the timed simulator's run; here
 *   every order is possible, which is the point. The guest's retargeting actions (`vms[].retarget`) are all due when
 *   the concurrent phase starts, in file order. The guest is idle between interrupts (a `busy` or `compute` guest
 *   never quiesces, and its compute steps change nothing the invariants look at).
 *
 * Each VM of the file gets its guest kernel and is built the QEMU way, in file order; a step acts on its `vm`.
 *
 * What cannot be checked (ScenarioCheckError says which and why): sweeps, guest trap-loop workloads
 * (hvc, mmio: they never quiesce), scenarios with no device line driven by a physical workload (nothing to check),
 * `via: eventfd` workloads, and steps other than assign, deassign, close and ioctl in the concurrent phase (an ioctl's
 * `expect` is the timed run's check: here its errno is an outcome like any other, judged by the invariants).
 */

import { ErrnoError } from '../abi/errno.js';
import {
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
  KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
  KVM_DEV_VFIO_GROUP,
  KVM_DEV_VFIO_GROUP_DEL,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  kvmArchForwardedIrq,
  kvmDeviceAttr,
} from '../abi/kvm.js';
import { createGuestKernel, type GuestKernel } from '../guest/guestKernel.js';
import { hostGicV2 } from '../host/irq/boot.js';
import type { SyscallHandle, UThread } from '../host/process.js';
import type { KvmVm } from '../kvm/vm.js';
import { createHost, type HostDevice } from '../machine.js';
import { loadScenario } from '../scenario/loader.js';
import { FDREF_RE, fdRefsOf, type Scenario, type ScenarioStep, stepsForMode } from '../scenario/schema.js';
import {
  assignIrq,
  createdFd,
  createKvmVfio,
  createQemuVm,
  deassignIrq,
  kvmVfioGroupAdd,
  kvmVfioGroupDel,
  layoutRawIoctl,
  openVfioDevice,
  place,
  type QemuVm,
  rawIoctl,
  uapiConstant,
  wireIrqfd,
} from '../scenario/vmm.js';
import type { TimerHandler } from '../sim/engine.js';
import type { Call as SyscallBody, TaskGen } from '../sim/task.js';
import type { CheckableScenario, CheckedLine, CheckInstance, CheckOptions, Variant } from './model.js';

export class ScenarioCheckError extends Error {}

/** The VMM steps the concurrent phase runs (on its VMM thread). */
const CONCURRENT_STEPS: readonly string[] = ['assign', 'deassign', 'close', 'ioctl'];

/** Why a scenario cannot be checked, or null when it can. */
export function uncheckable(s: Scenario): string | null {
  if (s.sweep) return 'a sweep: check one point (set the swept parameter in a copy)';
  for (const vm of s.vms) {
    const w = vm.guest.workload;
    if (typeof w === 'object' && !('compute' in w)) return 'a guest trap loop (hvc/mmio) never quiesces';
  }
  if (s.workloads.some((x) => x.via === 'eventfd')) return 'a `via: eventfd` workload drives no physical line';
  if (drivenLines(s).length === 0) return 'no device line is driven by a workload: nothing for the invariants to see';
  const { concurrent } = split(s);
  for (const st of concurrent) {
    if (!CONCURRENT_STEPS.includes(st.step))
      return `a '${st.step}' step that waits (at/after): only assign, deassign, close and ioctl run in the concurrent phase`;
  }
  return null;
}

function drivenLines(s: Scenario): { device: string; index: number }[] {
  const out: { device: string; index: number }[] = [];
  for (const w of s.workloads) {
    if (w.via === 'eventfd') continue;
    if (!out.some((x) => x.device === w.device && x.index === w.index)) out.push({ device: w.device, index: w.index });
  }
  return out;
}

function stepsOf(s: Scenario): ScenarioStep[] {
  return stepsForMode(s, s.mode === 'normal' ? 'normal' : 'forwarded');
}

/** Set-up: the steps before the first that waits; concurrent: the rest. */
function split(s: Scenario): { setup: ScenarioStep[]; concurrent: ScenarioStep[] } {
  const steps = stepsOf(s);
  const first = steps.findIndex((st) => st.at !== undefined || st.after !== undefined);
  return first < 0
    ? { setup: steps, concurrent: [] }
    : { setup: steps.slice(0, first), concurrent: steps.slice(first) };
}

/** The line a raw KVM_SET_DEVICE_ATTR ioctl ASSIGNs or DEASSIGNs (kvm_device_attr → kvm_arch_forwarded_irq), if any. */
function switchOf(st: Extract<ScenarioStep, { step: 'ioctl' }>): { key: string; op: 'assign' | 'deassign' } | null {
  const num = (v: unknown): number | undefined =>
    typeof v === 'number' ? v : typeof v === 'string' ? uapiConstant(v) : undefined;
  const f = st.struct?.name === 'kvm_device_attr' ? st.struct.fields : undefined;
  if (f === undefined || num(f.group) !== KVM_DEV_VFIO_DEVICE) return null;
  const attr = num(f.attr);
  const op =
    attr === KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ ? 'assign' : attr === KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ ? 'deassign' : null;
  const fwd = typeof f.addr === 'object' && 'struct' in f.addr ? f.addr.struct.fields : undefined;
  const dev = typeof fwd?.fd === 'string' ? /^device:(.+)$/.exec(fwd.fd)?.[1] : undefined;
  if (op === null || dev === undefined) return null;
  return { key: `${dev}/${num(fwd?.irq_index) ?? 0}`, op };
}

function stepName(st: ScenarioStep): string {
  if (st.step === 'assign' || st.step === 'deassign') return `${st.step} ${st.device}/${st.index}`;
  if (st.step === 'close') return `close ${st.what}${st.device !== undefined ? ` ${st.device}` : ''}`;
  if (st.step === 'ioctl') {
    const sw = switchOf(st);
    const what = sw !== null ? `${sw.op} ${sw.key}` : `${st.request}`;
    return `ioctl ${what}${st.failNth !== undefined ? ` (fail-nth ${st.failNth})` : ''}`;
  }
  return st.step;
}

/** A checkable scenario from a scenario file's text. */
export function scenarioFromYaml(text: string, file: string, opts: CheckOptions = {}): CheckableScenario {
  const s = loadScenario(text, file);
  const why = uncheckable(s);
  if (why !== null) throw new ScenarioCheckError(`${file}: cannot be checked: ${why}`);
  const variant = opts.variant ?? 'protocol';
  const raises = opts.raises ?? 1;
  const seed = opts.seed ?? s.seed;
  const numbering = opts.irqNumbering ?? 'linear';
  const { concurrent } = split(s);
  return {
    name: s.name,
    variant,
    seed,
    options: {
      variant,
      raises,
      seed,
      file,
      yaml: text,
      ...(numbering === 'legacy' ? { irqNumbering: numbering } : {}),
    },
    description: `${file}: ${concurrent.length > 0 ? concurrent.map(stepName).join(', ') : 'no VMM step'} on a VMM thread while ${drivenLines(s).length} line(s) are asserted ${raises}× each and the vCPU(s) run`,
    build: () => buildFromScenario(s, variant, raises, seed, numbering),
  };
}

interface VmState {
  readonly spec: Scenario['vms'][number];
  readonly guest: GuestKernel;
  readonly qvm: QemuVm;
  readonly kvmVm: KvmVm;
  kvmVfio: number;
}

interface Opened {
  readonly name: string;
  readonly container: number;
  readonly group: number;
  device: number;
  groupOpen: boolean;
}

function buildFromScenario(
  s: Scenario,
  variant: Variant,
  raises: number,
  seed: number,
  irqNumbering: 'linear' | 'legacy',
): CheckInstance {
  const host = createHost({
    cpus: s.host.cpus,
    seed,
    forwarding: variant,
    irqNumbering,
    gic: s.host.gic.version,
    nrIrqs: s.host.gic.nrIrqs,
    nrLrs: s.host.gic.nrLrs,
    devices: s.devices.map((d) => ({
      name: d.name,
      iommuGroup: d.iommuGroup,
      irqs: d.irqs.map((i) => ({ intid: i.intid, trigger: i.trigger })),
    })),
  });
  const deviceOf = (name: string): HostDevice => host.devices.find((d) => d.spec.name === name)!;
  const { setup, concurrent } = split(s);
  const wired = stepsOf(s).filter((st) => st.step === 'irqfd');
  const p = host.process();
  // One guest kernel and one QEMU-built VM per `vms[]` entry, in file order; the vCPUs find their guest by VM.
  const guests = s.vms.map((spec) =>
    createGuestKernel({
      ...(s.vms.length > 1 ? { name: spec.name } : {}), // one VM: the names of single-VM runs stay as they were
      engine: host.engine,
      gic: hostGicV2(host.irq),
      vcpus: spec.vcpus,
      eoiMode: spec.guest.eoiMode,
      eoi: spec.guest.eoi,
      devices: wired
        .filter((st) => st.vm === spec.name)
        .map((st) => ({ device: deviceOf(st.device).hw, line: st.index, intid: 32 + st.gsi, handlerCycles: 0 })),
    }),
  );
  host.kvm.guestFactory = { createGuest: (env) => vms.find((v) => v.kvmVm === env.vm)!.guest.createGuest(env) };
  const vms: VmState[] = s.vms.map((spec, i) => {
    const qvm = createQemuVm(p, { vcpus: spec.vcpus, nrIrqs: s.host.gic.nrIrqs });
    return { spec, guest: guests[i]!, qvm, kvmVm: host.kvm.vms.at(-1)!, kvmVfio: -1 };
  });
  const vmOf = (name: string | undefined): VmState => {
    const v = name === undefined ? vms[0] : vms.find((x) => x.spec.name === name);
    if (v === undefined) throw new ScenarioCheckError(`no VM '${name}'`);
    return v;
  };
  const opened: Opened[] = [];
  const open = (name: string): Opened => {
    const o = opened.find((x) => x.name === name);
    if (o === undefined) throw new ScenarioCheckError(`${name}: used before its open-device step`);
    return o;
  };
  /** The fds raw ioctl steps created, by their `as` name (an absent name: that call failed, or has not run yet). */
  const bound = new Map<string, number>();
  /** An fd reference (schema.ts FDREF_RE) as the VMM's fd number; `v`: the step's VM, for the VM-relative ones. */
  const resolveFd = (ref: string, v: VmState): number => {
    if (!FDREF_RE.test(ref)) return bound.get(ref) ?? -1;
    const [kind, name, index] = ref.split(/[:/]/);
    if (kind === 'kvm-vfio') return (name !== undefined ? vmOf(name) : v).kvmVfio;
    if (kind === 'vm') return (name !== undefined ? vmOf(name) : v).qvm.vm;
    if (kind === 'kvm') return v.qvm.kvm;
    if (kind === 'vcpu') {
      const owner = index !== undefined ? vmOf(name) : v;
      return owner.qvm.vcpus[Number(index ?? name)] ?? -1;
    }
    if (kind === 'device') return open(name!).device;
    if (kind === 'group') return open(name!).group;
    if (kind === 'container') return open(name!).container;
    throw new ScenarioCheckError(`fd reference '${ref}': not supported by the checker`);
  };
  for (const st of setup) {
    const v = vmOf(st.vm);
    switch (st.step) {
      case 'open-device': {
        const h = openVfioDevice(p, deviceOf(st.device).spec.iommuGroup, st.device);
        opened.push({ name: st.device, ...h, groupOpen: true });
        if (v.kvmVfio < 0) v.kvmVfio = createKvmVfio(p, v.qvm.vm);
        kvmVfioGroupAdd(p, v.kvmVfio, h.group);
        break;
      }
      case 'irqfd':
        wireIrqfd(p, v.qvm.vm, open(st.device).device, st.index, st.gsi, st.resample);
        break;
      case 'assign':
        assignIrq(p, v.kvmVfio, open(st.device).device, st.index, st.gsi);
        break;
      case 'deassign':
        deassignIrq(p, v.kvmVfio, open(st.device).device, st.index, st.gsi);
        break;
      case 'close':
        if (st.what === 'kvm-vfio') {
          p.close(v.kvmVfio);
          v.kvmVfio = -1;
        } else if (st.what === 'vm') p.close(v.qvm.vm);
        else if (st.what === 'device') {
          const o = open(st.device!);
          p.close(o.device);
          o.device = -1;
        } else {
          const o = open(st.device!);
          if (v.kvmVfio >= 0) kvmVfioGroupDel(p, v.kvmVfio, o.group);
          p.close(o.group);
          o.groupOpen = false;
        }
        break;
      case 'ioctl':
        p.main.ut.failNth = st.failNth ?? 0;
        try {
          const { created } = rawIoctl(p, { ...st, fd: resolveFd(st.fd, v) }, (ref) => resolveFd(ref, v));
          if (st.as !== undefined) bound.set(st.as, created);
        } catch (e) {
          if (!(e instanceof ErrnoError)) throw e; // an outcome, as in the concurrent phase
        } finally {
          p.main.ut.failNth = 0;
        }
        break;
      default:
        throw new ScenarioCheckError(`a '${st.step}' set-up step is not supported by the checker`);
    }
  }
  for (const v of vms) {
    v.qvm.vcpus.forEach((fd, i) => {
      const cpu = v.spec.pinning[i] ?? (i + 1) % host.engine.cpus.length;
      const th: UThread = p.thread(vms.length > 1 ? `${v.spec.name}/vcpu${i}` : `vcpu${i}`, cpu);
      th.ioctlAsync(fd, KVM_RUN, 0);
    });
  }
  host.settle();
  // The guest's retargeting actions, due now: each is made by its vCPU the next time that vCPU runs its loop (woken
  // by an interrupt), so it races the VMM's calls and the raises like any other guest step.
  for (const v of vms)
    for (const r of v.spec.retarget) v.guest.scheduleRetarget({ at: host.engine.now, intid: r.intid, target: r.vcpu });

  // Concurrent phase: the arguments are laid out now, so the VMM thread's body is only the syscalls.
  const attr = (a: number, st: Extract<ScenarioStep, { step: 'assign' | 'deassign' }>) => {
    const fwd = place(
      p,
      kvmArchForwardedIrq.encode({ fd: open(st.device).device, irq_index: st.index, guest_irq: st.gsi }),
    );
    return place(p, kvmDeviceAttr.encode({ flags: 0, group: KVM_DEV_VFIO_DEVICE, attr: BigInt(a), addr: BigInt(fwd) }));
  };
  interface Call {
    readonly run: () => SyscallBody<number>;
    /** The line (`device/index`) the call switches and how, when it is an ASSIGN or DEASSIGN. */
    readonly switches?: { key: string; op: 'assign' | 'deassign' };
    readonly failNth?: number;
  }
  const calls: Call[] = [];
  const bindsLater = new Set(concurrent.flatMap((st) => (st.step === 'ioctl' && st.as !== undefined ? [st.as] : [])));
  for (const st of concurrent) {
    const v = vmOf(st.vm);
    if (st.step === 'assign' || st.step === 'deassign') {
      const a = attr(st.step === 'assign' ? KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ : KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ, st);
      const fd = v.kvmVfio;
      calls.push({
        run: () => p.sysIoctl(fd, KVM_SET_DEVICE_ATTR, a),
        switches: { key: `${st.device}/${st.index}`, op: st.step },
      });
    } else if (st.step === 'ioctl') {
      const lay = () => ({ fd: resolveFd(st.fd, v), ...layoutRawIoctl(p, st, (ref) => resolveFd(ref, v)) });
      // a name an earlier call of this phase binds is resolved when the VMM thread gets there
      const now = fdRefsOf(st).some((r) => bindsLater.has(r)) ? null : lay();
      const sw = switchOf(st);
      calls.push({
        *run() {
          const { fd, request, arg } = now ?? lay();
          const ret = yield* p.sysIoctl(fd, request, arg);
          if (st.as !== undefined) bound.set(st.as, createdFd(p, request, ret, arg));
          return ret;
        },
        ...(sw !== null ? { switches: sw } : {}),
        ...(st.failNth !== undefined ? { failNth: st.failNth } : {}),
      });
    } else if (st.step === 'close') {
      if (st.what === 'group') {
        const o = open(st.device!);
        const g = place(p, new Uint8Array(new Int32Array([o.group]).buffer));
        const del = place(
          p,
          kvmDeviceAttr.encode({
            flags: 0,
            group: KVM_DEV_VFIO_GROUP,
            attr: BigInt(KVM_DEV_VFIO_GROUP_DEL),
            addr: BigInt(g),
          }),
        );
        const fd = v.kvmVfio;
        calls.push({ run: () => p.sysIoctl(fd, KVM_SET_DEVICE_ATTR, del) });
        calls.push({ run: () => p.sysClose(o.group) });
      } else {
        const fd = st.what === 'kvm-vfio' ? v.kvmVfio : st.what === 'vm' ? v.qvm.vm : open(st.device!).device;
        calls.push({ run: () => p.sysClose(fd) });
      }
    }
  }
  // What the successful switches leave each line in: the set-up's, then every ASSIGN/DEASSIGN that returned 0.
  const state = new Map<string, 'assign' | 'deassign'>();
  for (const st of setup)
    if (st.step === 'assign' || st.step === 'deassign') state.set(`${st.device}/${st.index}`, st.step);
  const switched = new Set(calls.flatMap((c) => (c.switches !== undefined ? [c.switches.key] : [])));
  const control: { what: string; handle: SyscallHandle }[] = [];
  if (calls.length > 0) {
    const ctl = p.thread('ctl', 0);
    function* script(): TaskGen<number> {
      for (const c of calls) {
        ctl.ut.failNth = c.failNth ?? 0; // /proc/thread-self/fail-nth, as syzkaller arms it before a call
        try {
          yield* c.run();
          if (c.switches !== undefined) state.set(c.switches.key, c.switches.op);
        } catch (e) {
          // an ABI refusal is an outcome of the interleaving, not a model failure: the VMM goes on as QEMU would
          if (!(e instanceof ErrnoError)) throw e;
        } finally {
          ctl.ut.failNth = 0;
        }
      }
      return 0;
    }
    control.push({ what: concurrent.map(stepName).join(', '), handle: ctl.submit('vmm', script()) });
  }
  const lines: CheckedLine[] = [];
  for (const l of drivenLines(s)) {
    const device = deviceOf(l.device);
    const key = `${l.device}/${l.index}`;
    const w = wired.find((st) => st.device === l.device && st.index === l.index);
    const gsi = w?.gsi;
    lines.push({
      device,
      line: l.index,
      ...(w !== undefined ? { kvmVm: vmOf(w.vm).kvmVm } : {}),
      // read at the end of the run: a line the concurrent phase switches is judged by the switches that succeeded
      get lastOp() {
        return switched.has(key) ? (state.get(key) ?? 'deassign') : undefined;
      },
      ...(gsi !== undefined ? { guestIntid: 32 + gsi } : {}),
    });
    const edge = device.spec.irqs[l.index]!.trigger === 'edge';
    let left = raises;
    if (left <= 0) continue;
    const raise: TimerHandler = {
      name: `${l.device}/${l.index}.raise`,
      fire: () => {
        if (edge) device.hw.pulse(l.index);
        else device.hw.assert(l.index);
        if (--left > 0) host.engine.after(1, raise);
      },
    };
    host.engine.after(1, raise);
  }
  const first = lines[0]!;
  return {
    host,
    guest: guests[0]!,
    guests,
    device: first.device,
    line: first.line,
    lines,
    raises,
    control,
    teardown: () => p.exit(),
  };
}
