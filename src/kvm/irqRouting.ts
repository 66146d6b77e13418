/**
 * GSI routing and MSIs, after virt/kvm/irqchip.c (kvm_set_irq_routing, setup_routing_entry, kvm_set_irq,
 * kvm_irq_map_gsi, kvm_send_userspace_msi), virt/kvm/eventfd.c (irqfd_update, kvm_irq_routing_update) and
 * arch/arm64/kvm/vgic/vgic-irqfd.c (kvm_set_routing_entry, vgic_irqfd_set_irq, kvm_set_msi,
 * kvm_arch_set_irq_inatomic, kvm_vgic_setup_default_irq_routing) of Linux 6.1.
 *
 * A routing table maps each GSI to its entries: an IRQCHIP entry injects SPI pin + 32 through the vGIC, an MSI entry
 * sends its doorbell write to the ITS (vgic_its_inject_msi). arm64 has one irqchip, so a GSI has at most one entry.
 * vgic_init installs the default table (GSI i → SPI i for every SPI), replacing whatever userspace set before;
 * KVM_SET_GSI_ROUTING replaces it, and every irqfd's snapshot of its GSI's entry is refreshed (irqfd_update).
 */
import { ERRNO, errno } from '../abi/errno.js';
import {
  KVM_IRQ_ROUTING_IRQCHIP,
  KVM_IRQ_ROUTING_MSI,
  KVM_IRQCHIP_NUM_PINS,
  KVM_MAX_IRQ_ROUTES,
  KVM_MSI_VALID_DEVID,
  KVM_NR_IRQCHIPS,
  type KvmIrqRoutingEntry,
} from '../abi/kvm.js';
import { markImmutable } from '../sim/snapshot.js';
import { VGIC_NR_PRIVATE_IRQS } from './vgic/vgicIrq.js';
import { vgicItsInjectCachedTranslation, vgicItsInjectMsi } from './vgic/vgicIts.js';
import { vgicHasIts } from './vgic/vgicLpi.js';
import type { KvmVm } from './vm.js';

/** -EWOULDBLOCK (= EAGAIN): kvm_arch_set_irq_inatomic cannot inject here, the irqfd's inject work must. */
export const EWOULDBLOCK = -ERRNO.EAGAIN;

/** struct kvm_msi as the kernel passes it around (kvm_populate_msi's output). */
export interface KvmMsiRoute {
  readonly addressLo: number;
  readonly addressHi: number;
  readonly data: number;
  readonly flags: number;
  readonly devid: number;
}

/** struct kvm_kernel_irq_routing_entry, arm64's two types. */
export class KvmKernelIrqRoutingEntry {
  constructor(
    readonly gsi: number,
    readonly type: number,
    /** IRQCHIP: the irqchip and pin (SPI number). */
    readonly irqchip: number,
    readonly pin: number,
    /** MSI: the message (flags and devid as KVM_SET_GSI_ROUTING gave them). */
    readonly msi: KvmMsiRoute | null,
  ) {}
}

/** struct kvm_irq_routing_table: the entries of each GSI below nr_rt_entries. */
export class KvmIrqRoutingTable {
  readonly map: KvmKernelIrqRoutingEntry[][];
  constructor(readonly nrRtEntries: number) {
    this.map = Array.from({ length: nrRtEntries }, () => []);
  }
}

/**
 * arm64 kvm_set_routing_entry (+ setup_routing_entry's one-entry-per-irqchip check): EINVAL for an unknown type, a
 * pin past the SPIs or an irqchip other than 0, or a second entry on a GSI that is not another irqchip's.
 */
function setupRoutingEntry(rt: KvmIrqRoutingTable, ue: KvmIrqRoutingEntry): void {
  for (const ei of rt.map[ue.gsi]!) {
    if (ei.type !== KVM_IRQ_ROUTING_IRQCHIP || ue.type !== KVM_IRQ_ROUTING_IRQCHIP || ue.u0 === ei.irqchip) {
      throw errno('EINVAL', `GSI ${ue.gsi} is routed twice (a second entry is only allowed on another irqchip)`);
    }
  }
  let e: KvmKernelIrqRoutingEntry;
  if (ue.type === KVM_IRQ_ROUTING_IRQCHIP) {
    if (ue.u1 >= KVM_IRQCHIP_NUM_PINS || ue.u0 >= KVM_NR_IRQCHIPS) {
      throw errno(
        'EINVAL',
        `irqchip ${ue.u0} pin ${ue.u1}: arm64 has irqchip 0 with pins 0..${KVM_IRQCHIP_NUM_PINS - 1}`,
      );
    }
    e = new KvmKernelIrqRoutingEntry(ue.gsi, ue.type, ue.u0, ue.u1, null);
  } else if (ue.type === KVM_IRQ_ROUTING_MSI) {
    const msi = { addressLo: ue.u0, addressHi: ue.u1, data: ue.u2, flags: ue.flags, devid: ue.u3 };
    e = new KvmKernelIrqRoutingEntry(ue.gsi, ue.type, 0, 0, msi);
  } else {
    throw errno('EINVAL', `routing entry type ${ue.type} is neither IRQCHIP nor MSI on arm64`);
  }
  rt.map[ue.gsi]!.unshift(e); // hlist_add_head
}

/**
 * kvm_set_irq_routing: GSIs below KVM_MAX_IRQ_ROUTES (EINVAL), flags only KVM_MSI_VALID_DEVID on an MSI entry and none
 * on others (EINVAL), each entry set up; then the new table replaces the old one and the irqfds are updated. A
 * failure leaves the old table in place.
 */
export function kvmSetIrqRouting(vm: KvmVm, ue: readonly KvmIrqRoutingEntry[]): void {
  let nrRtEntries = 0;
  for (const e of ue) {
    if (e.gsi >= KVM_MAX_IRQ_ROUTES) throw errno('EINVAL', `GSI ${e.gsi} ≥ KVM_MAX_IRQ_ROUTES (${KVM_MAX_IRQ_ROUTES})`);
    nrRtEntries = Math.max(nrRtEntries, e.gsi);
  }
  const rt = new KvmIrqRoutingTable(nrRtEntries + 1);
  for (const e of ue) {
    const allowed = e.type === KVM_IRQ_ROUTING_MSI ? KVM_MSI_VALID_DEVID : 0;
    if ((e.flags & ~allowed) !== 0)
      throw errno('EINVAL', `routing entry of GSI ${e.gsi} has flags 0x${e.flags.toString(16)}`);
    setupRoutingEntry(rt, e);
  }
  kvmInstallIrqRouting(vm, rt);
}

/** rcu_assign_pointer(kvm->irq_routing, new) and kvm_irq_routing_update: every irqfd re-reads its GSI's entry. */
function kvmInstallIrqRouting(vm: KvmVm, rt: KvmIrqRoutingTable): void {
  vm.irqRouting = markImmutable(rt); // published under RCU: never written again (a new table replaces it)
  for (const irqfd of vm.irqfds.items) irqfd.irqEntry = irqfdRoutingEntry(vm, irqfd.gsi);
}

/** kvm_vgic_setup_default_irq_routing: GSI i → irqchip 0 pin i for each SPI. */
export function kvmVgicSetupDefaultIrqRouting(vm: KvmVm, nrSpis: number): void {
  const rt = new KvmIrqRoutingTable(nrSpis);
  for (let i = 0; i < nrSpis; i++)
    rt.map[i]!.push(new KvmKernelIrqRoutingEntry(i, KVM_IRQ_ROUTING_IRQCHIP, 0, i, null));
  kvmInstallIrqRouting(vm, rt);
}

/** kvm_irq_map_gsi: the GSI's entries (none without a table, or past its end). */
export function kvmIrqMapGsi(vm: KvmVm, gsi: number): readonly KvmKernelIrqRoutingEntry[] {
  const rt = vm.irqRouting;
  if (rt === null || !Number.isInteger(gsi) || gsi < 0 || gsi >= rt.nrRtEntries) return NO_ENTRIES;
  return rt.map[gsi]!;
}
const NO_ENTRIES: readonly KvmKernelIrqRoutingEntry[] = [];

/** irqfd_update: the GSI's single entry, or null (the kernel's type 0) when it has none or several. */
export function irqfdRoutingEntry(vm: KvmVm, gsi: number): KvmKernelIrqRoutingEntry | null {
  const entries = kvmIrqMapGsi(vm, gsi);
  return entries.length === 1 ? entries[0]! : null;
}

/** vgic_irqfd_set_irq: SPI pin + 32; -EINVAL when that is not a valid SPI of the vGIC. */
function vgicIrqfdSetIrq(vm: KvmVm, e: KvmKernelIrqRoutingEntry, level: number): number {
  const vgic = vm.vgic;
  const spi = e.pin + VGIC_NR_PRIVATE_IRQS;
  if (vgic === null || !vgic.vgicValidSpi(spi)) return -ERRNO.EINVAL;
  return Math.min(vgic.kvmVgicInjectIrq(null, spi, level !== 0), 0);
}

/** kvm_set_msi: -ENODEV without an ITS; a falling edge is nothing (-1); a rising one goes to vgic_its_inject_msi. */
function kvmSetMsi(vm: KvmVm, msi: KvmMsiRoute, level: number): number {
  if (vm.vgic === null || !vgicHasIts(vm.vgic)) return -ERRNO.ENODEV;
  if (level === 0) return -1;
  return vgicItsInjectMsi(vm, msi);
}

/** The entry's ->set. */
function routingEntrySet(vm: KvmVm, e: KvmKernelIrqRoutingEntry, level: number): number {
  return e.type === KVM_IRQ_ROUTING_MSI ? kvmSetMsi(vm, e.msi!, level) : vgicIrqfdSetIrq(vm, e, level);
}

/**
 * kvm_set_irq: every entry of the GSI; the sum of the non-negative results, or -1 when none succeeded (no entry
 * at all included). Synchronous: the caller charges C_VGIC_INJECT on its step.
 */
export function kvmSetIrqRouted(vm: KvmVm, gsi: number, level: number): number {
  let ret = -1;
  const entries = kvmIrqMapGsi(vm, gsi);
  for (let i = entries.length - 1; i >= 0; i--) {
    const r = routingEntrySet(vm, entries[i]!, level);
    if (r < 0) continue;
    ret = r + Math.max(ret, 0);
  }
  return ret;
}

/**
 * kvm_arch_set_irq_inatomic (from irqfd_wakeup, with the irqfd's snapshot): an SPI is injected at once once the vGIC
 * is initialised, an MSI only when the ITS translation cache has it; anything else is -EWOULDBLOCK (the inject work
 * runs kvm_set_irq instead).
 */
export function kvmArchSetIrqInatomic(vm: KvmVm, e: KvmKernelIrqRoutingEntry | null, level: number): number {
  const vgic = vm.vgic;
  if (level === 0 || e === null || vgic === null) return EWOULDBLOCK;
  if (e.type === KVM_IRQ_ROUTING_MSI) {
    if (!vgicHasIts(vgic)) return EWOULDBLOCK;
    return vgicItsInjectCachedTranslation(vgic, e.msi!) === 0 ? 0 : EWOULDBLOCK;
  }
  if (!vgic.initialized) return EWOULDBLOCK;
  return vgicIrqfdSetIrq(vm, e, 1);
}

/**
 * kvm_send_userspace_msi (KVM_SIGNAL_MSI): EINVAL without an in-kernel irqchip or with flags other than
 * KVM_MSI_VALID_DEVID; else kvm_set_msi's result: 1 delivered, 0 blocked by the guest, or a -errno.
 */
export function kvmSendUserspaceMsi(vm: KvmVm, msi: KvmMsiRoute): number {
  if (vm.vgic === null) throw errno('EINVAL', 'KVM_SIGNAL_MSI needs an in-kernel irqchip');
  if ((msi.flags & ~KVM_MSI_VALID_DEVID) !== 0) throw errno('EINVAL', `kvm_msi.flags 0x${msi.flags.toString(16)}`);
  return kvmSetMsi(vm, msi, 1);
}
