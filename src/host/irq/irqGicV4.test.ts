/**
 * GICv4.1 direct injection at the hardware + host level (irq-gic-v4.c over irq-gic-v3-its.c on the model's GICv4.1):
 * a device event mapped to a vLPI of vPE 0 (its_map_vlpi), vPE 0 resident on CPU 1 (irq_set_affinity → VMOVP,
 * its_make_vpe_resident, its_commit_vpe), the device's MSI pending at CPU 1's virtual CPU interface and acknowledged
 * and EOI'd by the guest with no host step; non-resident with a doorbell → the doorbell LPI runs its host handler
 * once; resident again → delivered; its_unmap_vlpi in any order with MSIs in flight leaves nothing pending.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ITS_CMD_CLEAR, ITS_CMD_INT, ITS_CMD_INV, ITS_CMD_SYNC } from '../../hw/gicv3/its.js';
import { ITS_CMD_VMOVI, ITS_CMD_VSYNC } from '../../hw/gicv3/itsVirtual.js';
import { LPI_BASE } from '../../hw/gicv3/lpi.js';
import { ICH_HCR_EN, ICH_VMCR_ENG1, SPURIOUS_INTID } from '../../hw/gicv3/regs.js';
import { ItsMsiBus, MsiDevice } from '../../hw/msiDevice.js';
import { createHost } from '../../machine.js';
import { defineCost } from '../../sim/costs.js';
import { Engine } from '../../sim/engine.js';
import { op, type TaskGen } from '../../sim/task.js';
import { irqSetAffinity } from './affinity.js';
import { bootHostIrq, type HostIrqV3 } from './boot.js';
import { IRQ_HANDLED, type IrqReturn } from './irqDesc.js';
import {
  itsAllocVcpuIrqs,
  itsCommitVpe,
  itsFreeVcpuIrqs,
  itsGetVlpi,
  itsInvallVpe,
  itsMakeVpeNonResident,
  itsMakeVpeResident,
  itsMapVlpi,
  itsPropUpdateVlpi,
  itsUnmapVlpi,
} from './irqGicV4.js';
import { LPI_PROP_DEFAULT_PRIO, LPI_PROP_ENABLED, LPI_PROP_GROUP1 } from './its/itsInit.js';
import type { ItsVlpiMap } from './its/itsVlpi.js';
import { ItsVm, type ItsVpe } from './its/itsVpe.js';
import { pciAllocIrqVectors } from './its/pciMsi.js';
import { freeIrq, irqSetIrqchipState, requestIrq } from './manage.js';

const C_HANDLER = defineCost('test_gicv4_handler', 100, 'test');
const DEVICE_ID = 0x100;
const VECTOR = 1;
/** KVM's vLPI for the vector (the guest's emulated-ITS mapping), and its_vlpi_map's properties: priority 0xa0, enabled. */
const VINTID = LPI_BASE + 32;
const VPROPS = LPI_PROP_DEFAULT_PRIO | LPI_PROP_GROUP1 | LPI_PROP_ENABLED;

function setup() {
  const engine = new Engine({ cpus: 2, seed: 7 });
  const hi = bootHostIrq(engine, { gic: 'v3', nrLpis: 256, nrVpes: 8 }) as HostIrqV3;
  const g = hi.genirq;
  const v4 = hi.v4!;
  const pdev = new MsiDevice('0000:01:00.0', DEVICE_ID, 2, new ItsMsiBus(hi.gic.its!, hi.its!.its.physBase));
  const vm = new ItsVm(engine, 2);
  const vpe = vm.vpes[0]!;
  const ran = { host: 0, doorbell: 0 };
  const hostHandler = function* (): TaskGen<IrqReturn> {
    yield op(C_HANDLER);
    ran.host++;
    return IRQ_HANDLED;
  };
  /** vgic_v4_doorbell_handler: the vCPU has a pending vLPI (vpe->pending_last = true), kick it. */
  const doorbellHandler = function* (_irq: number, v: unknown): TaskGen<IrqReturn> {
    yield op(C_HANDLER);
    (v as ItsVpe).pendingLast = true;
    ran.doorbell++;
    return IRQ_HANDLED;
  };
  const thread = (name: string, cpu: number, body: () => TaskGen<void>) => {
    const t = engine.spawn(name, cpu, body());
    t.catchErrors = true;
    engine.settle();
    if (t.error !== undefined) throw t.error;
  };
  /** The function raises its vector: a posted write of the EventID to GITS_TRANSLATER. */
  const msi = () => {
    engine.at(engine.now + 1, { name: 'msi', fire: () => pdev.fire(VECTOR) });
    engine.settle();
  };
  /** vgic_v4_load on `cpu`: VMOVP to it, resident with group 1 enabled, committed. */
  const load = (cpu = 1) =>
    thread('vcpu-load', cpu, function* () {
      yield* irqSetAffinity(g, vpe.irq, 1 << cpu);
      yield* itsMakeVpeResident(v4, vpe, false, true);
      vpe.resident = true;
      yield* itsCommitVpe(v4, vpe);
      vpe.ready = true;
    });
  const put = (db: boolean, cpu = 1) =>
    thread('vcpu-put', cpu, function* () {
      yield* itsMakeVpeNonResident(v4, vpe, db);
      vpe.resident = false;
      vpe.ready = false;
    });
  let lpiIrq = 0;
  thread('vfio-pci + vgic_v4_init', 0, function* () {
    const vectors = yield* pciAllocIrqVectors(hi.msiDomain!, pdev, 2, false);
    lpiIrq = vectors.descs[VECTOR]!.irq;
    yield* requestIrq(g, lpiIrq, hostHandler, 0, 'vfio-msi', 'dev');
    expect(yield* itsAllocVcpuIrqs(v4, vm)).toBe(vpe.irq);
    yield* requestIrq(g, vpe.irq, doorbellHandler, 0, 'vcpu', vpe);
  });
  for (let cpu = 0; cpu < 2; cpu++) {
    // what KVM's vgic-v3 programs before entering the guest: the virtual interface enabled, Group 1 on, VPMR open
    hi.gic.vif(cpu).writeHcr(ICH_HCR_EN);
    hi.gic.vif(cpu).writeVmcr(ICH_VMCR_ENG1 | (0xf8 << 24));
  }
  const map = () =>
    thread('kvm_vgic_v4_set_forwarding', 0, function* () {
      yield* itsMapVlpi(g, lpiIrq, { vm, vpe, vintid: VINTID, properties: VPROPS, dbEnabled: true });
    });
  const unmap = () =>
    thread('kvm_vgic_v4_unset_forwarding', 0, function* () {
      yield* itsUnmapVlpi(g, lpiIrq);
    });
  const vptBit = () => (hi.its!.pages.memory.readU8(vpe.vptAddr + (VINTID >> 3)) >> (VINTID & 7)) & 1;
  return { engine, ...hi, g, v4, pdev, lpiIrq, vm, vpe, ran, thread, msi, load, put, map, unmap, vptBit };
}

describe('GICv4.1 host layer: its_map_vlpi, residency, doorbells, its_unmap_vlpi (irq-gic-v4.c)', () => {
  it('boots: the vector is a physical LPI whose MSI runs the host handler; every vPE VMAPP’d with its doorbell', () => {
    const s = setup();
    expect(s.vpe.vpeId).toBe(0);
    expect(s.gic.vlpis!.table.get(0)?.doorbell).toBe(s.vpe.dbLpi);
    s.msi();
    expect(s.ran).toEqual({ host: 1, doorbell: 0 });
    expect(s.gic.its!.commandErrors).toBe(0);
    expect(s.its!.its.log).toEqual([]);
  });

  it('resident on CPU 1: the MSI is pending at CPU 1’s virtual interface; the guest acknowledges and EOIs it with no hypervisor step', () => {
    const s = setup();
    s.map();
    s.load();
    expect(s.vpe.colIdx).toBe(1); // its_vpe_set_affinity sent VMOVP
    expect(s.gic.vlpis!.residentVpe(1)).toBe(0);
    const stepsBefore = s.engine.steps;
    s.msi();
    expect(s.engine.steps).toBe(stepsBefore + 1); // the device's write, and no CPU step: no exit, no host IRQ
    const vif = s.gic.vif(1);
    expect(vif.virqLine).toBe(true);
    expect(s.gic.cpu(1).irqLine).toBe(false);
    expect(vif.readIar1()).toBe(VINTID); // ICV_IAR1_EL1
    vif.writeEoir1(VINTID); // ICV_EOIR1_EL1 (the guest's EOImode 0)
    expect([vif.readRpr(), vif.readMisr(), vif.readElrsr(), vif.readHcr()]).toEqual([0xff, 0, 0xf, ICH_HCR_EN]);
    expect(s.ran).toEqual({ host: 0, doorbell: 0 });
  });

  it('non-resident with a doorbell: the MSI raises the doorbell LPI once on the host; resident again → the vLPI is delivered', () => {
    const s = setup();
    s.map();
    s.load();
    s.put(true);
    expect(s.vpe.pendingLast).toBe(false);
    s.msi();
    expect(s.ran).toEqual({ host: 0, doorbell: 1 });
    expect(s.vpe.pendingLast).toBe(true); // what kvm_vgic_vcpu_pending_irq reads to wake the vCPU
    expect(s.vptBit()).toBe(1);
    s.msi();
    expect(s.ran.doorbell).toBe(1); // GICv4.1: one doorbell until resident again
    s.load();
    const vif = s.gic.vif(1);
    expect(vif.readIar1()).toBe(VINTID);
    vif.writeEoir1(VINTID);
    expect(vif.readIar1()).toBe(SPURIOUS_INTID);
    s.put(false); // preempted, not blocking: no doorbell, PendingLast stays set
    expect(s.vpe.pendingLast).toBe(true);
    s.msi();
    expect(s.ran.doorbell).toBe(1);
  });

  it('its_prop_update_vlpi disables the vLPI (VCONF byte + INV) and its doorbell; its_get_vlpi reads the mapping back', () => {
    const s = setup();
    s.map();
    s.load();
    s.thread('prop', 0, function* () {
      yield* itsPropUpdateVlpi(s.g, s.lpiIrq, LPI_PROP_DEFAULT_PRIO | LPI_PROP_GROUP1, true);
      const info = { cmdType: 'GET_VLPI' as const, map: null as ItsVlpiMap | null };
      yield* itsGetVlpi(s.g, s.lpiIrq, info);
      expect([info.map?.vintid, info.map?.dbEnabled]).toEqual([VINTID, false]);
    });
    s.msi();
    expect(s.gic.vif(1).virqLine).toBe(false);
    expect(s.gic.vlpis!.isPending(0, VINTID)).toBe(true);
    expect(s.gic.its!.commandErrors).toBe(0);
  });

  it('its_mask_irq / its_unmask_irq of a forwarded LPI: the VM’s VCONF byte and a VINV (+ the doorbell’s VMOVI), not the host’s property table', () => {
    const s = setup();
    s.map();
    s.load();
    const desc = s.g.desc(s.lpiIrq);
    const host = s.its!;
    const mem = host.pages.memory;
    const vconf = s.vm.vpropAddr + VINTID - LPI_BASE;
    const prop = host.propTable + desc.hwirq - LPI_BASE;
    const propBefore = mem.readU8(prop);
    const sent = (nr: number) => host.its.sent[nr]!;
    const before = [sent(ITS_CMD_VMOVI), sent(ITS_CMD_INV), sent(ITS_CMD_VSYNC), sent(ITS_CMD_SYNC)];
    s.thread('mask', 0, function* () {
      yield* desc.chip.irqMask(desc);
    });
    expect(mem.readU8(vconf)).toBe(VPROPS & ~LPI_PROP_ENABLED);
    expect(mem.readU8(prop)).toBe(propBefore);
    expect([sent(ITS_CMD_VMOVI), sent(ITS_CMD_INV), sent(ITS_CMD_VSYNC), sent(ITS_CMD_SYNC)]).toEqual([
      before[0]! + 1,
      before[1]! + 1,
      before[2]! + 2,
      before[3],
    ]);
    expect(s.v4.vlpi.vlpiMap(desc)).toMatchObject({ dbEnabled: false, properties: VPROPS & ~LPI_PROP_ENABLED });
    s.msi();
    expect(s.gic.vif(1).virqLine).toBe(false);
    s.thread('unmask', 0, function* () {
      yield* desc.chip.irqUnmask(desc);
    });
    expect(mem.readU8(vconf)).toBe(VPROPS);
    expect(s.gic.vif(1).readIar1()).toBe(VINTID);
    expect(s.ran).toEqual({ host: 0, doorbell: 0 });
    expect(s.gic.its!.commandErrors).toBe(0);
  });

  it('irq_set_irqchip_state(PENDING) of a forwarded LPI: its_send_vint / its_send_vclear, synchronised on the vPE (VSYNC)', () => {
    const s = setup();
    s.map();
    s.put(false);
    const sent = (nr: number) => s.its!.its.sent[nr]!;
    const vsync = sent(ITS_CMD_VSYNC);
    s.thread('vint', 0, function* () {
      yield* irqSetIrqchipState(s.g, s.lpiIrq, 'PENDING', true);
    });
    expect(s.vptBit()).toBe(1);
    s.thread('vclear', 0, function* () {
      yield* irqSetIrqchipState(s.g, s.lpiIrq, 'PENDING', false);
    });
    expect(s.vptBit()).toBe(0);
    expect([sent(ITS_CMD_INT), sent(ITS_CMD_CLEAR), sent(ITS_CMD_VSYNC) - vsync]).toEqual([1, 1, 2]);
    expect(s.ran).toEqual({ host: 0, doorbell: 0 });
  });

  it('its_invall_vpe (INVALL_VPE): GICR_INVALLR of the vPE’s redistributor makes it re-read a VCONF edited without an INV', () => {
    const s = setup();
    s.map();
    s.load();
    const mem = s.its!.pages.memory;
    mem.writeU8(s.vm.vpropAddr + VINTID - LPI_BASE, VPROPS & ~LPI_PROP_ENABLED);
    s.thread('invall', 0, function* () {
      yield* itsInvallVpe(s.v4, s.vpe);
    });
    s.msi();
    expect(s.gic.vif(1).virqLine).toBe(false);
    expect(s.gic.vlpis!.isPending(0, VINTID)).toBe(true);
  });

  it('vgic_v4_teardown: free_irq of the doorbells, its_free_vcpu_irqs — VMAPP V=0, vPEIDs, VPTs, VCONF and LPIs back', () => {
    const s = setup();
    const liveBefore = s.its!.pages.liveCount;
    s.thread('vgic_v4_teardown', 0, function* () {
      yield* freeIrq(s.g, s.vpe.irq, s.vpe);
      yield* itsFreeVcpuIrqs(s.v4, s.vm);
    });
    expect(s.gic.vlpis!.table.get(0)).toBeNull();
    expect(s.g.domain.irqToDesc(s.vpe.irq)).toBeUndefined();
    expect(s.its!.pages.liveCount).toBe(liveBefore - 3); // two VPTs and the VCONF
    expect(s.gic.its!.commandErrors).toBe(0);
    const again = new ItsVm(s.engine, 1);
    s.thread('again', 0, function* () {
      expect(yield* itsAllocVcpuIrqs(s.v4, again)).toBeGreaterThan(0);
    });
    expect(again.vpes[0]!.vpeId).toBe(0); // the vPEID was given back
  });

  it('its_unmap_vlpi and a second its_map_vlpi: EINVAL for an unmapped LPI, the physical LPI is back after the unmap', () => {
    const s = setup();
    expect(() => s.unmap()).toThrow(/EINVAL/);
    s.map();
    s.unmap();
    s.msi();
    expect(s.ran).toEqual({ host: 1, doorbell: 0 });
  });

  it('its_unmap_vlpi in any order with in-flight MSIs and residency changes leaves nothing pending; later MSIs reach the host', () => {
    type Op = 'msi' | 'load' | 'put-db' | 'put' | 'ack' | 'unmap';
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom<Op>('msi', 'load', 'put-db', 'put', 'ack', 'unmap'), { maxLength: 10 }),
        (ops) => {
          const s = setup();
          s.map();
          let mapped = true;
          const run = (o: Op) => {
            if (o === 'msi') s.msi();
            else if (o === 'load' && !s.vpe.resident) s.load();
            else if ((o === 'put' || o === 'put-db') && s.vpe.resident) s.put(o === 'put-db');
            else if (o === 'ack' && s.vpe.resident) {
              const v = s.gic.vif(1).readIar1();
              if (v !== SPURIOUS_INTID) s.gic.vif(1).writeEoir1(v);
            } else if (o === 'unmap' && mapped) {
              s.unmap();
              mapped = false;
            }
          };
          for (const o of ops) run(o);
          if (mapped) s.unmap();
          const vlpis = s.gic.vlpis!;
          expect(vlpis.isPending(0, VINTID)).toBe(false);
          expect(s.gic.vif(1).readHppir1()).toBe(SPURIOUS_INTID);
          if (s.vpe.resident) s.put(false);
          expect(s.vptBit()).toBe(0);
          expect(s.ran.doorbell).toBeLessThanOrEqual(ops.filter((o) => o === 'put-db').length);
          const host = s.ran.host;
          s.msi();
          expect(s.ran.host).toBe(host + 1);
          expect(s.gic.its!.commandErrors).toBe(0);
        },
      ),
      { numRuns: 40, seed: 41 },
    );
  });

  it('createHost({ nrVpes }) boots the GICv4 layer; nrVpes without LPIs or on a GICv2 is a TypeError', () => {
    const host = createHost({ gic: 'v3', nrLpis: 256, nrVpes: 4 });
    expect(host.irq.version === 'v3' && host.irq.v4 !== null && host.irq.gic.vlpis?.table.nrVpes).toBe(4);
    expect(() => createHost({ gic: 'v3', nrVpes: 4 })).toThrow(TypeError);
    expect(() => createHost({ nrLpis: 64, nrVpes: 4 })).toThrow(TypeError);
  });
});
