/**
 * The MSI race: a vfio-pci MSI forwarded as a GICv4.1 vLPI (the path of test/e2e/vgicV4.test.ts) while the VMM
 * rewires it. Set-up (not explored): a GICv4.1 host with an ITS and one MSI-capable function, a VM with one vCPU,
 * a vGIC-v3 and a vITS, the guest booted with its ITS driver (event 0 of guest DeviceID 8 on LPI 8192, the driver
 * counting), QEMU's vfio-pci MSI steps — vector 0 on an eventfd (VFIO_DEVICE_SET_IRQS), GSI 0 routed to the guest's
 * MSI (KVM_SET_GSI_ROUTING), KVM_IRQFD on it — so irqbypass has connected the irqfd to vfio-pci's producer and
 * kvm_vgic_v4_set_forwarding made the function's LPI vLPI 8192 of the vCPU's vPE; the guest idles (WFI: its vPE
 * non-resident with a doorbell). Concurrent phase: the VMM control thread (CPU 0) issues its calls in order —
 * `deassign` (KVM_IRQFD DEASSIGN: irqfd_shutdown → del_producer → its_unmap_vlpi), `assign` (KVM_IRQFD again:
 * add_producer → its_map_vlpi), `trigger` (SET_IRQS with the same eventfd: vfio_msi_set_vector_signal unregisters
 * the producer, free_irq, request_irq, registers it again) — while the function fires vector 0 `raises` times (a
 * hardware event agent) and the vCPU runs the guest (woken by a doorbell or the irqfd path, back to WFI).
 */
import { EFD_CLOEXEC, EFD_NONBLOCK } from '../abi/eventfd.js';
import {
  KVM_ARM_PREFERRED_TARGET,
  KVM_ARM_VCPU_INIT,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_TYPE_ARM_VGIC_ITS,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_IRQ_ROUTING_MSI,
  KVM_IRQFD,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_MSI_VALID_DEVID,
  KVM_RUN,
  KVM_SET_GSI_ROUTING,
  KVM_VGIC_ITS_ADDR_TYPE,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
  kvmIrqfd as kvmIrqfdStruct,
  kvmIrqRouting,
  kvmIrqRoutingEntry,
  kvmVcpuInit,
  kvmVgicV3RdistRegionAttr,
} from '../abi/kvm.js';
import {
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_MSI_IRQ_INDEX,
} from '../abi/vfio.js';
import { vfioIrqSetEventfdData, vfioIrqSetWithData } from '../abi/vfioStructs.js';
import { createGuest } from '../createGuest.js';
import type { GuestIrqHandler } from '../guest/gicDriver.js';
import type { GuestKernel } from '../guest/guestKernel.js';
import { VIRT_GIC_ITS } from '../guest/itsDriver.js';
import type { Process, SyscallHandle } from '../host/process.js';
import type { Gicv3Its } from '../hw/gicv3/its.js';
import type { MsiDevice } from '../hw/msiDevice.js';
import type { KvmVm } from '../kvm/vm.js';
import { createHost, type Host, type HostMsiDevice } from '../machine.js';
import { kvmCreateDevice, kvmSetDeviceAttr, openVfioDevice, place } from '../scenario/vmm.js';
import type { GuestCpu } from '../sim/cpu.js';
import type { Engine, TimerHandler } from '../sim/engine.js';
import { touchRead } from '../sim/footprint.js';
import { type Boundary, Frame } from '../sim/frame.js';
import type { CheckableScenario, CheckedMsi, CheckInstance, MsiDriverCounts, Variant } from './model.js';
import { itsDrops } from './msiInvariants.js';

/** A VMM call of the MSI race's concurrent phase. */
export type MsiOp = 'deassign' | 'assign' | 'trigger';
export const MSI_OPS: readonly MsiOp[] = ['deassign', 'assign', 'trigger'];

export interface MsiRaceOptions {
  variant?: Variant;
  /** MSIs the function writes on vector 0 during the concurrent phase (default 1). */
  raises?: number;
  /** The VMM's calls in order (default trigger). */
  msiOps?: readonly MsiOp[];
  seed?: number;
}

export const MSI_RACE_DEVICE = '0000:01:00.0';
/** The guest's DeviceID for the function (its ITS driver's), its event 0's LPI, and the GSI routed to it. */
const GUEST_DEVID = 8;
export const MSI_RACE_LPI = 8192;
const MSI_GSI = 0;

export function msiRaceScenario(opts: MsiRaceOptions = {}): CheckableScenario {
  const variant = opts.variant ?? 'protocol';
  const raises = opts.raises ?? 1;
  const ops = opts.msiOps ?? ['trigger'];
  const seed = opts.seed ?? 1;
  return {
    name: 'msi-race',
    variant,
    seed,
    options: { variant, raises, msiOps: [...ops], seed },
    description: `${ops.join('+')} of a GICv4.1-forwarded vfio-pci MSI while the function writes it ${raises}× and the vCPU runs and halts`,
    build: () => buildMsiRace(variant, raises, ops, seed),
  };
}

/**
 * The guest driver's handler of the function's event: counts its runs and notes, when it last ran, how many messages
 * the function had written and how many messages the ITS had dropped — a write after that which never made it run
 * again is lost unless the ITS dropped one since (msiInvariants.ts msiLost). An edge: one run after the last write is
 * all a driver needs.
 */
export class MsiDriverHandler implements GuestIrqHandler, MsiDriverCounts {
  readonly name: string;
  runs = 0;
  sentAtLastRun = 0;
  itsDropsAtLastRun = 0;

  constructor(
    private readonly fn: MsiDevice,
    private readonly vector: number,
    private readonly its: Gicv3Its,
  ) {
    this.name = `vfio-msi${vector}`;
  }

  handle(_g: GuestCpu, _vcpu: number): Frame<boolean> {
    return new MsiDriverRun(this);
  }

  /** The run's bookkeeping: it reads the function's and the ITS's counters (declared: DPOR orders it with them). */
  ran(): void {
    touchRead(this.fn.oid);
    touchRead(this.its.oid);
    this.runs++;
    this.sentAtLastRun = this.fn.sent[this.vector]!;
    this.itsDropsAtLastRun = itsDrops(this.its);
  }
}

class MsiDriverRun extends Frame<boolean> {
  constructor(private readonly h: MsiDriverHandler) {
    super();
  }

  protected step(): Boundary {
    this.h.ran();
    return this.return_(true);
  }
}

/** The VMM control thread's body: its ioctls in order, each on its own fd (an errno is an outcome: it goes on). */
class MsiControlScript extends Frame<number> {
  constructor(
    private readonly p: Process,
    private readonly calls: readonly { fd: number; request: number; arg: number }[],
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === this.calls.length) return this.return_(0);
    const c = this.calls[this.pc++]!;
    return this.call(this.p.sysIoctl(c.fd, c.request, c.arg));
  }
}

/** The function writing a vector's message `left` more times, each write a hardware event after the previous one. */
export class MsiRaise implements TimerHandler {
  constructor(
    readonly name: string,
    private readonly engine: Engine,
    private readonly fn: MsiDevice,
    private readonly vector: number,
    private left: number,
  ) {}

  fire(): void {
    this.fn.fire(this.vector);
    if (--this.left > 0) this.engine.after(1, this);
  }
}

class MsiRaceInstance implements CheckInstance {
  readonly lines = [];
  readonly msis: readonly CheckedMsi[];
  readonly control: readonly { what: string; handle: SyscallHandle }[];

  constructor(
    readonly host: Host,
    readonly guest: GuestKernel,
    readonly raises: number,
    what: string,
    handle: SyscallHandle,
    private readonly process: Process,
    fn: HostMsiDevice,
    handler: MsiDriverHandler,
    kvmVm: KvmVm,
  ) {
    this.msis = [{ fn, vector: 0, handler, kvmVm, vintid: MSI_RACE_LPI }];
    this.control = [{ what, handle }];
  }

  teardown(): void {
    this.process.exit();
  }
}

function buildMsiRace(variant: Variant, raises: number, ops: readonly MsiOp[], seed: number): CheckInstance {
  const host = createHost({
    gic: 'v3',
    cpus: 2,
    seed,
    forwarding: variant,
    nrLpis: 1024,
    nrVpes: 4,
    msiDevices: [{ name: MSI_RACE_DEVICE, iommuGroup: 12, deviceId: 0x0100, vectors: 4 }],
  });
  const fn = host.msiDevices[0]!;
  const handler = new MsiDriverHandler(fn.hw, 0, host.irq.gic.its!);
  const guest = createGuest(host, {
    vcpus: 1,
    its: { devices: [{ deviceId: GUEST_DEVID, events: [{ eventId: 0, lpi: MSI_RACE_LPI, handler }] }] },
  });
  const p = host.process();
  const { vm, vcpu } = createItsVm(p);
  p.thread('vcpu0', 1).ioctlAsync(vcpu, KVM_RUN, 0);
  host.engine.runUntil(() => guest.booted, 'guest boot');
  host.settle();

  // QEMU's vfio-pci MSI: the vector on an eventfd, its route to the guest's MSI, the irqfd (irqbypass connects)
  const dev = openVfioDevice(p, 12, MSI_RACE_DEVICE);
  const efd = p.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  const setIrqs = place(
    p,
    vfioIrqSetWithData(
      {
        flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: 1,
      },
      vfioIrqSetEventfdData([efd]),
    ),
  );
  p.ioctl(dev.device, VFIO_DEVICE_SET_IRQS, setIrqs);
  const msi = guest.its!.msis[0]!;
  const r = p.mem.alloc(kvmIrqRouting.size + kvmIrqRoutingEntry.size);
  kvmIrqRouting.write(p.mem.view(r, kvmIrqRouting.size), { nr: 1, flags: 0 });
  kvmIrqRoutingEntry.write(p.mem.view(r + kvmIrqRouting.size, kvmIrqRoutingEntry.size), {
    gsi: MSI_GSI,
    type: KVM_IRQ_ROUTING_MSI,
    flags: KVM_MSI_VALID_DEVID,
    pad: 0,
    u0: msi.address,
    u1: 0,
    u2: msi.data,
    u3: GUEST_DEVID,
    upad: new Array(16).fill(0),
  });
  p.ioctl(vm, KVM_SET_GSI_ROUTING, r);
  const irqfdOf = (flags: number) => place(p, kvmIrqfdStruct.encode({ fd: efd, gsi: MSI_GSI, flags, resamplefd: 0 }));
  p.ioctl(vm, KVM_IRQFD, irqfdOf(0));
  host.settle();

  // Concurrent phase: the arguments are laid out now, so the control thread's body is only the syscalls.
  const callOf = (o: MsiOp) => {
    if (o === 'trigger') return { fd: dev.device, request: VFIO_DEVICE_SET_IRQS, arg: setIrqs };
    return { fd: vm, request: KVM_IRQFD, arg: irqfdOf(o === 'deassign' ? KVM_IRQFD_FLAG_DEASSIGN : 0) };
  };
  const what = ops.join('+');
  const handle = p.thread('ctl', 0).submit(what, new MsiControlScript(p, ops.map(callOf)));
  if (raises > 0) host.engine.after(1, new MsiRaise('device.msi', host.engine, fn.hw, 0, raises));
  return new MsiRaceInstance(host, guest, raises, what, handle, p, fn, handler, host.kvm.vms[0]!);
}

/**
 * QEMU virt's VM on a GICv3 host with an ITS, by raw ioctls (hw/intc/arm_gicv3_kvm.c, arm_gicv3_its_kvm.c): the
 * vCPU, the vGIC-v3 at virt's addresses, the vITS at VIRT_GIC_ITS, then both CTRL_INITs.
 */
function createItsVm(p: Process): { vm: number; vcpu: number } {
  const u64 = (v: number | bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    return b;
  };
  const vm = p.ioctl(p.open('/dev/kvm'), KVM_CREATE_VM, 0);
  const init = p.mem.alloc(kvmVcpuInit.size);
  p.ioctl(vm, KVM_ARM_PREFERRED_TARGET, init);
  const vcpu = p.ioctl(vm, KVM_CREATE_VCPU, 0);
  p.ioctl(vcpu, KVM_ARM_VCPU_INIT, init);
  const gic = kvmCreateDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_V3);
  kvmSetDeviceAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, u64(0x0800_0000));
  const region = kvmVgicV3RdistRegionAttr(1, 0x080a_0000n, 0, 0);
  kvmSetDeviceAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, u64(region));
  const its = kvmCreateDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_ITS);
  kvmSetDeviceAttr(p, its, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, u64(VIRT_GIC_ITS));
  kvmSetDeviceAttr(p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
  kvmSetDeviceAttr(p, its, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
  return { vm, vcpu };
}
