/**
 * The generic invariants over message-signalled interrupts (a CheckInstance's `msis`): the same names as the wired
 * lines' (invariants.ts), judged on what an MSI leaves behind — the function's counters and vector mask, the host
 * LPI's pending bit, the vLPI's pending bit in its vPE's table, the vGIC's pending latch — and, after teardown, on
 * what the ITS, GICv4.1 and irqbypass layers must have given back (vPE table entries, LPI ranges, registrations).
 * An MSI is an edge: one run of the guest driver after the last message is all the driver needs, so "not lost" is
 * "the driver ran after the function's last write", and a message that found its vector masked waits in the
 * function's pending bit (accounted, not lost, while it waits for an unmask that comes).
 */
import type { IrqDesc } from '../host/irq/irqDesc.js';
import type { Gicv3Its } from '../hw/gicv3/its.js';
import type { Host } from '../machine.js';
import type { CheckedMsi, CheckInstance } from './model.js';

/** Messages the ITS dropped: translations that found no mapping, pending (v)LPIs a DISCARD cleared. */
export function itsDrops(its: Gicv3Its): number {
  return its.droppedCount + its.discardedPending;
}

/** The host IRQ descriptor of the vector, when vfio-pci has enabled its MSIs. */
function hostDesc(m: CheckedMsi): IrqDesc | null {
  return m.fn.vdev.vectors?.descs[m.vector] ?? null;
}

function label(m: CheckedMsi): string {
  return `${m.fn.spec.name} MSI vector ${m.vector}`;
}

/** Messages of `check` over every checked MSI vector. */
export function perMsi(inst: CheckInstance, check: (m: CheckedMsi) => string[]): string[] {
  return (inst.msis ?? []).flatMap(check);
}

/**
 * no-lost-irq: the guest driver ran after the function's last message — or the messages since its last run are
 * accounted by the ITS, which dropped one since then: a translation with no mapping, or a pending (v)LPI a DISCARD
 * cleared (with the messages coalesced into it). Both are how upstream remaps an event (its_vlpi_map and
 * its_vlpi_unmap send DISCARD, then VMAPTI or MAPTI: a message in between finds no mapping, one pending at the
 * DISCARD is cleared): a message the function writes while the kernel remaps its vector is dropped by the hardware,
 * visibly, not lost by software.
 */
export function msiLost(host: Host, m: CheckedMsi): string[] {
  const sent = m.fn.hw.sent[m.vector]!;
  if (m.handler.sentAtLastRun === sent || revoked(m)) return [];
  const its = host.irq.version === 'v3' ? host.irq.gic.its : null;
  const drops = its === null ? 0 : itsDrops(its) - m.handler.itsDropsAtLastRun;
  if (drops > 0) return [];
  return [
    `${label(m)}: the function wrote ${sent} message(s); the guest driver last ran after message ${m.handler.sentAtLastRun} (${m.handler.runs} run(s)) and the ITS dropped none since: lost`,
  ];
}

/**
 * The VMM took the vector from the guest, which accounts for its messages: VFIO binds no eventfd to it at the end
 * (SET_IRQS with count 0, or the device fd's release: vfio_msi_disable frees its IRQ), or the message waits in the
 * vector's eventfd with no irqfd reading it (KVM_IRQFD DEASSIGN: QEMU reads it itself then, vfio_msi_interrupt).
 * Coarse: it accounts every message since the driver's last run, also one written before the VMM's call began.
 */
function revoked(m: CheckedMsi): boolean {
  const trigger = m.fn.vdev.ctx[m.vector]?.trigger ?? null;
  return trigger === null || (!trigger.isZero && !trigger.wqh.active);
}

/** no-duplicate-irq: every run of the guest driver is explained by a message the function wrote. */
export function msiDuplicate(m: CheckedMsi): string[] {
  const sent = m.fn.hw.sent[m.vector]!;
  return m.handler.runs > sent
    ? [`guest driver ${m.handler.name} ran ${m.handler.runs} time(s) for ${sent} message(s): delivered twice`]
    : [];
}

/**
 * no-irq-left-pending at quiescence: the guest idles, so nothing pending for it is waiting for anything — not the
 * host LPI while requested, not the vLPI in any of the VM's vPE tables, not the vGIC's pending latch.
 */
export function msiPending(host: Host, m: CheckedMsi): string[] {
  const out: string[] = [];
  const gic = host.irq.version === 'v3' ? host.irq.gic : null;
  const d = hostDesc(m);
  if (gic !== null && d !== null && d.action !== null) {
    for (let pe = 0; pe < gic.distributor.nrPes; pe++)
      if (gic.distributor.lpis?.isPending(pe, d.hwirq) === true)
        out.push(`${label(m)}: host LPI ${d.hwirq} pending forever on PE ${pe} while requested by '${d.actionName}'`);
  }
  const vgic = host.kvm.vms.includes(m.kvmVm) ? m.kvmVm.vgic : null;
  if (vgic === null) return out;
  for (const vpe of vgic.itsVm?.vpes ?? [])
    if (gic?.vlpis?.isPending(vpe.vpeId, m.vintid) === true)
      out.push(`${label(m)}: vLPI ${m.vintid} pending forever in vPE ${vpe.vpeId}'s table`);
  if (vgic.lpis.get(m.vintid)?.pendingLatch === true)
    out.push(`${label(m)}: LPI ${m.vintid} pending forever in the vGIC (pending_latch)`);
  return out;
}

/** no-irq-left-disabled: a vector VFIO binds is not left masked at the function (its messages would wait forever). */
export function msiMasked(m: CheckedMsi): string[] {
  const ctx = m.fn.vdev.ctx[m.vector];
  return ctx?.trigger != null && m.fn.hw.isMasked(m.vector)
    ? [`${label(m)} left masked at the function while VFIO binds it`]
    : [];
}

/**
 * no-irq-left-forwarded: the host LPI is a vLPI exactly while an irqbypass pair (vfio-pci's producer for the vector
 * and an irqfd consumer with the same eventfd) connects it, and then the vGIC's LPI says so too (irq->hw with this
 * host IRQ): a vLPI mapped with no pair, or the vGIC and the ITS disagreeing, is a stale forwarding.
 */
export function msiForwarded(host: Host, m: CheckedMsi): string[] {
  const d = hostDesc(m);
  if (d === null) return [];
  const ctx = m.fn.vdev.ctx[m.vector];
  const prod = ctx?.producer ?? null;
  const paired = prod !== null && prod.token !== null && host.kernel.irqBypass.consumerOf(prod.token) !== undefined;
  const vgic = host.kvm.vms.includes(m.kvmVm) ? m.kvmVm.vgic : null;
  const irq = vgic?.lpis.get(m.vintid);
  const out: string[] = [];
  if (d.forwardedToVcpu && !paired) out.push(`${label(m)}: ${d} still a vLPI although no irqbypass pair connects it`);
  if (irq?.hw === true && (!d.forwardedToVcpu || irq.hostIrq !== d.irq))
    out.push(`${label(m)}: the vGIC's LPI ${m.vintid} is HW-mapped to IRQ ${irq.hostIrq}, which is not its vLPI`);
  return out;
}

/**
 * no-leak-after-teardown of the MSI layers: every vPE unmapped from the GIC's vPE table (VMAPP V=0), every LPI back
 * in the host's allocator (devices' and doorbells'), no irqbypass producer or consumer left registered.
 */
export function msiLayerLeaks(host: Host): string[] {
  if (host.irq.version !== 'v3' || host.irq.its === null) return [];
  const out: string[] = [];
  const table = host.irq.gic.vlpis?.table;
  for (let id = 0; id < (table?.nrVpes ?? 0); id++)
    if (table!.get(id) !== null) out.push(`vPE ${id} still mapped in the GIC's vPE table`);
  const ranges = host.irq.its.lpiRanges;
  if (ranges.freeLpis() !== ranges.nrLpis)
    out.push(`${ranges.nrLpis - ranges.freeLpis()} LPI(s) still allocated in the host's LPI ranges`);
  const bypass = host.kernel.irqBypass;
  if (bypass.producers.length > 0) out.push(`${bypass.producers.length} irqbypass producer(s) still registered`);
  if (bypass.consumers.length > 0) out.push(`${bypass.consumers.length} irqbypass consumer(s) still registered`);
  return out;
}
