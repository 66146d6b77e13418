// Shared set-up for the vGIC tests: a real GICv2 (distributor + virtual interfaces) and a host-irq shim over its
// distributor where Linux IRQ n ↔ GIC INTID n - HOST_IRQ_BASE (as if the GIC domain started at virq 1000).
import { Gic } from '../../hw/gic/gic.js';
import { GIC_CPU_CTRL, GIC_CPU_PRIMASK, GIC_DIST_CONFIG, GIC_DIST_ENABLE_SET } from '../../hw/gic/regs.js';
import { Engine } from '../../sim/engine.js';
import { Vgic, type VgicCpu, type VgicHostIrqOps } from './vgic.js';
import { vgicMmioRead, vgicMmioWrite } from './vgicMmioV2.js';

export const HOST_IRQ_BASE = 1000;

export interface Harness {
  gic: Gic;
  vgic: Vgic;
  vcpus: VgicCpu[];
  acks: number[];
  kicks: number[];
  physCalls: string[];
}

export function makeHarness(
  opts: { nrLrs?: number; vcpus?: number; nrIrqs?: number; resampler?: boolean } = {},
): Harness {
  const nrVcpus = opts.vcpus ?? 1;
  const engine = new Engine({ cpus: Math.max(nrVcpus, 1) });
  const gic = new Gic({ nrCpus: Math.max(nrVcpus, 1), nrIrqs: 128, nrLrs: opts.nrLrs ?? 4 });
  const dist = gic.distributor;
  const physCalls: string[] = [];
  const hostIrqOps: VgicHostIrqOps = {
    getIrqchipState(hostIrq, which) {
      const intid = hostIrq - HOST_IRQ_BASE;
      physCalls.push(`get ${which} ${intid}`);
      return which === 'PENDING' ? dist.isPending(intid) : dist.isActive(intid);
    },
    setIrqchipState(hostIrq, which, val) {
      const intid = hostIrq - HOST_IRQ_BASE;
      physCalls.push(`set ${which} ${intid} ${val}`);
      if (which === 'ACTIVE') dist.setActive(intid, val);
      else if (val) dist.setPending(intid);
      else dist.clearPending(intid);
    },
    hwIntidOf(hostIrq) {
      const intid = hostIrq - HOST_IRQ_BASE;
      return intid >= 32 && intid < dist.nrIrqs ? intid : -1;
    },
  };
  const acks: number[] = [];
  const kicks: number[] = [];
  const vgic = new Vgic(engine, { hostIrqOps, kick: (v) => kicks.push(v.id) });
  // Like the irqfd resampler: on ack, de-assert the virtual line once.
  vgic.onAck = (intid) => {
    acks.push(intid);
    if (opts.resampler !== false) vgic.kvmVgicInjectIrq(null, intid, false);
  };
  const vcpus: VgicCpu[] = [];
  for (let i = 0; i < nrVcpus; i++) vcpus.push(vgic.kvmVgicVcpuInit());
  if (opts.nrIrqs !== undefined) expectOk(vgic.kvmVgicSetNrIrqs(opts.nrIrqs));
  expectOk(vgic.vgicInit());
  // Guest boot on each vCPU: enable group 0 and open the priority mask (GICV_CTLR, GICV_PMR), then get scheduled out
  // and back in, so the shadow VMCR holds the guest's settings.
  for (const v of vcpus) {
    const vif = gic.vif(v.id);
    vgic.kvmVgicLoad(v, vif);
    vif.write(GIC_CPU_CTRL, 1);
    vif.write(GIC_CPU_PRIMASK, 0xf8);
    vgic.kvmVgicPut(v);
    vgic.kvmVgicLoad(v, vif);
  }
  vgicMmioWrite(vcpus[0]!, 0, 4, 1); // GICD_CTLR.Enable
  return { gic, vgic, vcpus, acks, kicks, physCalls };
}

function expectOk(r: number): void {
  if (r !== 0) throw new Error(`expected 0, got ${r}`);
}

/** Guest: enable an INTID through GICD_ISENABLER. */
export function guestEnable(vcpu: VgicCpu, intid: number): void {
  vgicMmioWrite(vcpu, GIC_DIST_ENABLE_SET + (intid >> 5) * 4, 4, 1 << (intid & 31));
}

/** Guest: configure an SPI level or edge through GICD_ICFGR (read-modify-write). */
export function guestConfig(vcpu: VgicCpu, intid: number, edge: boolean): void {
  const off = GIC_DIST_CONFIG + (intid >> 4) * 4;
  const bit = 1 << ((intid & 15) * 2 + 1);
  const v = vgicMmioRead(vcpu, off, 4);
  vgicMmioWrite(vcpu, off, 4, edge ? v | bit : v & ~bit);
}

/** Guest: set a priority through a byte write of GICD_IPRIORITYR. */
export function guestPriority(vcpu: VgicCpu, intid: number, prio: number): void {
  vgicMmioWrite(vcpu, 0x400 + intid, 1, prio);
}
