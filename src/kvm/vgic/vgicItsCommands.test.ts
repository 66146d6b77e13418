// The emulated ITS's command queue (vgic-its.c vgic_its_process_commands and the vgic_its_cmd_handle_* functions):
// each command's effect on the ITS's devices, ITEs, collections and LPIs, and each error a handler returns (the
// queue goes on; the E_ITS_* code is kept for the test in `lastError`).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ItsProgrammer, itsVm, QUEUE } from '../../../test/fixtures/itsSetup.js';
import {
  E_ITS_CLEAR_UNMAPPED_INTERRUPT,
  E_ITS_DISCARD_UNMAPPED_INTERRUPT,
  E_ITS_INT_UNMAPPED_INTERRUPT,
  E_ITS_INV_UNMAPPED_INTERRUPT,
  E_ITS_INVALL_UNMAPPED_COLLECTION,
  E_ITS_MAPC_PROCNUM_OOR,
  E_ITS_MAPD_DEVICE_OOR,
  E_ITS_MAPD_ITTSIZE_OOR,
  E_ITS_MAPTI_ID_OOR,
  E_ITS_MAPTI_PHYSICALID_OOR,
  E_ITS_MAPTI_UNMAPPED_DEVICE,
  E_ITS_MOVALL_PROCNUM_OOR,
  E_ITS_MOVI_UNMAPPED_COLLECTION,
  E_ITS_MOVI_UNMAPPED_INTERRUPT,
  findIte,
  findItsDevice,
  vgicItsResolveLpi,
} from './vgicIts.js';
import { vgicItsMmioAccess } from './vgicItsMmio.js';

function ready(nrVcpus = 2) {
  const v = itsVm(nrVcpus);
  const g = new ItsProgrammer(v);
  g.standard();
  v.vgic.enabled = true; // GICD_CTLR.EnableGrp1A, as the guest's gic_dist_init leaves it
  return { ...v, g };
}

describe('vgic_its_process_commands', () => {
  it('runs nothing while the ITS is disabled, then everything up to CWRITER once enabled (vgic_mmio_write_its_ctlr)', () => {
    const v = itsVm(1);
    const g = new ItsProgrammer(v);
    g.write(0x100, 0x4000_0000); // BASER0 …
    g.write(0x104, 0x8000_0000);
    g.write(0x108, 0x4001_0000);
    g.write(0x10c, 0x8000_0000);
    g.write(0x80, QUEUE | 15);
    g.write(0x84, 0x8000_0000);
    g.mapd(3, 2);
    expect(v.its.creadr).toBe(0);
    expect(v.its.cwriter).toBe(32);
    expect(findItsDevice(v.its, 3)).toBeNull();
    g.write(0, 1);
    expect(v.its.creadr).toBe(32);
    expect(findItsDevice(v.its, 3)?.numEventidBits).toBe(2);
  });

  it('enabling with an invalid table or queue is ignored (UNPREDICTABLE in the spec)', () => {
    const v = itsVm(1);
    const g = new ItsProgrammer(v);
    g.write(0, 1);
    expect(v.its.enabled).toBe(false);
    expect(g.read(0) >>> 0).toBe(0x8000_0000); // GITS_CTLR.Quiescent only
  });

  it('a CWRITER past the queue is ignored; the read offset wraps at the end of the queue', () => {
    const { its, g } = ready(1);
    const before = its.cwriter;
    g.write(0x88, 0x1_0000); // 16 pages of 4 KiB: offset 64 KiB is outside
    expect(its.cwriter).toBe(before);
    while (its.cwriter !== 0x1_0000 - 32) g.sync(0);
    g.sync(0);
    expect([its.creadr, its.cwriter]).toEqual([0, 0]);
  });

  it('KVM emulates no GITS_TRANSLATER: a guest store there is ignored, as are accesses that are too wide or misaligned', () => {
    const { its, vgic, g } = ready(1);
    g.mapti(0, 0, 8192, 0);
    expect(vgicItsMmioAccess(its, 0x1_0040, true, 4, 0)).toBe(0);
    expect(vgic.vgicGetIrq(8192)!.pendingLatch).toBe(false);
    expect(vgicItsMmioAccess(its, 0x0002, false, 2, 0)).toBe(0); // GITS_CTLR needs a 32-bit access
    expect(vgicItsMmioAccess(its, 0x0000, false, 4, 0)).toBe(0x8000_0001);
  });

  it('a command KVM does not know (here a GICv4 VMAPP, 0x29) is dropped with -ENODEV and the queue goes on', () => {
    const { its, g } = ready(1);
    g.cmd([0x29]);
    expect(its.lastError).toBe(-19);
    g.mapti(0, 1, 8193, 0);
    expect(findIte(its, 0, 1)?.irq?.intid).toBe(8193);
  });
});

describe('MAPD / MAPC / MAPTI / MAPI (vgic_its_cmd_handle_mapd, _mapc, _mapi)', () => {
  it('MAPTI maps an event to an LPI in a collection, taking a reference on a new LPI that targets the collection’s vCPU', () => {
    const { its, vgic, g } = ready();
    g.mapti(0, 2, 8200, 1);
    const irq = findIte(its, 0, 2)!.irq!;
    expect([irq.intid, irq.targetVcpuIdx, irq.refcount, irq.group]).toEqual([8200, 1, 1, 1]);
    expect(vgic.vgicGetIrq(8200)).toBe(irq);
    g.mapi(0, 9, 0); // MAPI: the LPI is the EventID — below 8192, out of range
    expect(its.lastError).toBe(E_ITS_MAPTI_PHYSICALID_OOR);
  });

  it('errors: unmapped device, EventID beyond the ITT, LPI outside PROPBASER.IDbits, DeviceID beyond the table, ITT too big, target vCPU beyond the VM', () => {
    const { its, g } = ready();
    g.mapti(7, 0, 8192, 0);
    expect(its.lastError).toBe(E_ITS_MAPTI_UNMAPPED_DEVICE);
    g.mapti(0, 16, 8192, 0);
    expect(its.lastError).toBe(E_ITS_MAPTI_ID_OOR);
    g.mapti(0, 0, 1 << 16, 0);
    expect(its.lastError).toBe(E_ITS_MAPTI_PHYSICALID_OOR);
    g.mapd(0x1_0000 / 8, 1); // a one-page flat device table holds 8192 DTEs
    expect(its.lastError).toBe(E_ITS_MAPD_DEVICE_OOR);
    g.mapd(1, 17);
    expect(its.lastError).toBe(E_ITS_MAPD_ITTSIZE_OOR);
    g.mapc(0, 2);
    expect(its.lastError).toBe(E_ITS_MAPC_PROCNUM_OOR);
    expect(its.commandErrors).toBe(6);
  });

  it('a second MAPTI of a mapped event keeps the first mapping (UNPREDICTABLE: KVM returns 0)', () => {
    const { its, g } = ready();
    g.mapti(0, 0, 8192, 0);
    g.mapti(0, 0, 8300, 1);
    expect(findIte(its, 0, 0)!.irq!.intid).toBe(8192);
    expect(its.commandErrors).toBe(0);
  });

  it('MAPTI into a collection never MAPC’d allocates it unmapped: the LPI has no target until MAPC (update_affinity_collection)', () => {
    const { its, g } = ready();
    g.mapti(0, 0, 8192, 5);
    const irq = findIte(its, 0, 0)!.irq!;
    expect(irq.targetVcpuIdx).toBe(-1);
    expect(vgicItsResolveLpi(its, 0, 0)).toBe(E_ITS_INT_UNMAPPED_INTERRUPT);
    g.mapc(5, 1);
    expect(irq.targetVcpuIdx).toBe(1);
  });

  it('MAPD again frees the device’s ITEs and their LPI references; MAPD V=0 unmaps it', () => {
    const { its, vgic, g } = ready();
    g.mapti(0, 0, 8192, 0);
    g.mapd(0, 4);
    expect(findIte(its, 0, 0)).toBeNull();
    expect(vgic.vgicGetIrq(8192)).toBeNull();
    g.mapd(0, 4, 0, false);
    expect(findItsDevice(its, 0)).toBeNull();
  });

  it('MAPC V=0 frees the collection; its ITEs lose it', () => {
    const { its, g } = ready();
    g.mapti(0, 0, 8192, 1);
    g.mapc(1, 0, false);
    expect(findIte(its, 0, 0)!.collection).toBeNull();
    expect(vgicItsResolveLpi(its, 0, 0)).toBe(E_ITS_INT_UNMAPPED_INTERRUPT);
  });
});

describe('INT / CLEAR / INV / INVALL / MOVI / MOVALL / DISCARD', () => {
  it('INT makes the LPI pending and queues it on its vCPU once enabled; CLEAR drops the pending state', () => {
    const { its, vgic, g } = ready();
    g.mapti(0, 0, 8192, 1);
    g.int(0, 0);
    const irq = vgic.vgicGetIrq(8192)!;
    expect(irq.pendingLatch).toBe(true);
    expect(irq.vcpu).toBeNull(); // disabled in the configuration table: not on an ap-list
    g.config(8192, 0xa3);
    g.inv(0, 0);
    // references: the ITE's, the translation cache's (vgic_its_resolve_lpi cached it), the ap-list's
    expect([irq.enabled, irq.priority, irq.vcpu?.id, irq.refcount]).toEqual([true, 0xa0, 1, 3]);
    g.clear(0, 0);
    expect(irq.pendingLatch).toBe(false);
    g.int(0, 1);
    expect(its.lastError).toBe(E_ITS_INT_UNMAPPED_INTERRUPT);
    g.clear(0, 1);
    expect(its.lastError).toBe(E_ITS_CLEAR_UNMAPPED_INTERRUPT);
    g.inv(0, 1);
    expect(its.lastError).toBe(E_ITS_INV_UNMAPPED_INTERRUPT);
  });

  it('a table edit without INV has no effect; INVALL re-reads every LPI of the collection’s vCPU', () => {
    const { its, vgic, g } = ready();
    g.mapti(0, 0, 8192, 0);
    g.mapti(0, 1, 8193, 1);
    g.config(8192, 0x51);
    g.config(8193, 0x61);
    expect(vgic.vgicGetIrq(8192)!.enabled).toBe(false);
    g.invall(0);
    expect([vgic.vgicGetIrq(8192)!.enabled, vgic.vgicGetIrq(8192)!.priority]).toEqual([true, 0x50]);
    expect(vgic.vgicGetIrq(8193)!.enabled).toBe(false); // targets vCPU 1
    g.invall(9);
    expect(its.lastError).toBe(E_ITS_INVALL_UNMAPPED_COLLECTION);
  });

  it('MOVI moves an LPI to another mapped collection; errors for an unmapped event or collection', () => {
    const { its, g } = ready();
    g.mapti(0, 0, 8192, 0);
    g.movi(0, 0, 1);
    expect(findIte(its, 0, 0)!.irq!.targetVcpuIdx).toBe(1);
    g.movi(0, 3, 1);
    expect(its.lastError).toBe(E_ITS_MOVI_UNMAPPED_INTERRUPT);
    g.movi(0, 0, 7);
    expect(its.lastError).toBe(E_ITS_MOVI_UNMAPPED_COLLECTION);
  });

  it('MOVALL retargets every LPI of one vCPU to another; a processor number past the VM is an error', () => {
    const { its, vgic, g } = ready();
    g.mapti(0, 0, 8192, 0);
    g.mapti(0, 1, 8193, 0);
    g.movall(0, 1);
    expect([vgic.vgicGetIrq(8192)!.targetVcpuIdx, vgic.vgicGetIrq(8193)!.targetVcpuIdx]).toEqual([1, 1]);
    g.movall(0, 2);
    expect(its.lastError).toBe(E_ITS_MOVALL_PROCNUM_OOR);
  });

  it('DISCARD frees the ITE and its LPI reference; again it is E_ITS_DISCARD_UNMAPPED_INTERRUPT', () => {
    const { its, vgic, g } = ready();
    g.mapti(0, 0, 8192, 0);
    g.discard(0, 0);
    expect(findIte(its, 0, 0)).toBeNull();
    expect(vgic.vgicGetIrq(8192)).toBeNull();
    g.discard(0, 0);
    expect(its.lastError).toBe(E_ITS_DISCARD_UNMAPPED_INTERRUPT);
  });

  it('an LPI pending on an ap-list outlives its DISCARD until the prune (the ap-list holds a reference)', () => {
    const { vgic, g } = ready();
    g.config(8192, 0xa3);
    g.mapti(0, 0, 8192, 0);
    g.int(0, 0);
    const irq = vgic.vgicGetIrq(8192)!;
    expect(irq.refcount).toBe(3); // the ITE, the translation cache, the ap-list
    g.discard(0, 0);
    expect(irq.refcount).toBe(1);
    expect(vgic.vgicGetIrq(8192)).toBe(irq);
    irq.pendingLatch = false; // the guest acknowledged it
    vgic.vgicPruneApList(vgic.vcpus[0]!);
    expect(vgic.vgicGetIrq(8192)).toBeNull();
  });
});

describe('any command sequence (property)', () => {
  const CMDS = [0x01, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x29];
  const word = fc.record({
    cmd: fc.constantFrom(...CMDS),
    dev: fc.integer({ min: 0, max: 3 }),
    id: fc.integer({ min: 0, max: 20 }),
    lpi: fc.constantFrom(0, 8192, 8193, 8194, 9000, 70000),
    icid: fc.integer({ min: 0, max: 3 }),
    target: fc.integer({ min: 0, max: 2 }),
    valid: fc.boolean(),
    size: fc.integer({ min: 0, max: 20 }),
  });

  it('never throws, keeps CREADR = CWRITER, and every LPI’s references are its ITEs, cache entries and ap-list', () => {
    fc.assert(
      fc.property(fc.array(word, { maxLength: 40 }), fc.boolean(), (cmds, intsEnabled) => {
        const { its, vgic, g } = ready(2);
        for (const l of [8192, 8193, 8194, 9000]) g.config(l, intsEnabled ? 0xa3 : 0xa2);
        for (const c of cmds) {
          const t2 = c.target ^ 1;
          g.cmd([
            c.cmd,
            c.dev,
            c.cmd === 0x08 ? c.size : c.id,
            c.lpi,
            ((c.target & 0xffff) << 16) | c.icid,
            c.valid ? 0x8000_0000 : 0,
            t2 << 16,
            0,
          ]);
          for (const v of vgic.vcpus) vgic.vgicPruneApList(v); // as the next guest exit would
        }
        expect(its.creadr).toBe(its.cwriter);
        for (const irq of vgic.lpis.values()) {
          let refs = irq.vcpu !== null ? 1 : 0;
          for (const d of its.deviceList) for (const ite of d.ittHead) if (ite.irq === irq) refs++;
          for (const cte of vgic.lpiTranslationCache) if (cte.irq === irq) refs++;
          expect(irq.refcount).toBe(refs);
        }
        for (const d of its.deviceList)
          for (const ite of d.ittHead) expect(vgic.lpis.get(ite.irq!.intid)).toBe(ite.irq);
      }),
      { numRuns: 150 },
    );
  });
});
