// The guest's vITS commands on a vLPI forwarded to the GICv4.1 hardware (vgic-its.c with irq->hw: update_lpi_config →
// its_prop_update_vlpi, vgic_its_trigger_msi / CLEAR → irq_set_irqchip_state, its_free_ite → its_unmap_vlpi,
// update_affinity → its_map_vlpi, vgic_its_invall → its_invall_vpe), on test/fixtures/vgicV4Setup.ts's machine: the
// guest writes a command into its queue and GITS_CWRITER, which vCPU 0's data-abort exit emulates (io_mem_abort →
// vgic_mmio_write_its_cwriter, then the queued host calls: vcpu.ts ioMemAbortKernel); the outcome is read at the
// VCONF, the VPT, the host ITS's command counts and the guest's handler.
import { describe, expect, it } from 'vitest';
import { setU64 } from '../../../test/fixtures/itsGuest.js';
import { forwardedMsi, GSI, guestCommands, LPI, mmioExit, setGuestProp } from '../../../test/fixtures/vgicV4Setup.js';
import {
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_MSI_VALID_DEVID,
  KVM_SET_DEVICE_ATTR,
  KVM_SIGNAL_MSI,
  kvmDeviceAttr,
  kvmMsi,
} from '../../abi/kvm.js';
import {
  KVM_DEV_ARM_ITS_CTRL_RESET,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
} from '../../abi/kvmArm64.js';
import { LPI_PROP_ENABLED, LPI_PROP_GROUP1 } from '../../host/irq/its/itsInit.js';
import {
  GITS_CTLR,
  ITS_CMD_CLEAR,
  ITS_CMD_DISCARD,
  ITS_CMD_INT,
  ITS_CMD_INV,
  ITS_CMD_INVALL,
  ITS_CMD_MAPC,
  ITS_CMD_MAPD,
  ITS_CMD_MAPTI,
  ITS_CMD_MOVALL,
  ITS_CMD_MOVI,
} from '../../hw/gicv3/its.js';
import { ITS_CMD_VMOVI, ITS_CMD_VSYNC } from '../../hw/gicv3/itsVirtual.js';
import { kvmIrqfd, place } from '../../scenario/vmm.js';
import { TASK_DONE } from '../../sim/task.js';
import { updateLpiConfig, vgicItsCacheTranslation, vgicItsInvalidateCache } from './vgicLpi.js';
import { vgicV4FlushOps } from './vgicV4Ops.js';

const DEVID = 8;
const VALID_HI = 0x8000_0000;
const GICR_INVLPIR = 0xa0;
const GICR_INVALLR = 0xb0;

type M = ReturnType<typeof forwardedMsi>;

/** A write of vCPU 0's GICR_INVLPIR / GICR_INVALLR (low word). */
function redistWrite(m: M, offset: number, data: number): void {
  mmioExit(m, Number(m.kvmVm.vgic!.vcpus[0]!.rdBase!) + offset, data);
}

const ev = (cmd: number, eventId = 0): number[] => [cmd, DEVID, eventId, 0, 0, 0, 0, 0];
const movi = (coll: number): number[] => [ITS_CMD_MOVI, DEVID, 0, 0, coll, 0, 0, 0];
const mapc = (coll: number, target: number, valid = true): number[] => [
  ITS_CMD_MAPC,
  0,
  0,
  0,
  (target << 16) | coll,
  valid ? VALID_HI : 0,
  0,
  0,
];

function state(m: M) {
  const itsVm = m.kvmVm.vgic!.itsVm!;
  const v4 = m.host.irq.version === 'v3' ? m.host.irq.v4! : null;
  const memory = v4!.host.pages.memory;
  const vpe = (i: number) => itsVm.vpes[i]!;
  return {
    vconf: () => memory.readU8(itsVm.vpropAddr + LPI - 8192),
    vpt: (i = 0) => m.host.irq.gic.vlpis!.isPending(vpe(i).vpeId, LPI),
    sent: (nr: number) => v4!.host.its.sent[nr]!,
    desc: () => m.host.irq.genirq.desc(m.ctx.producer!.irq),
    mapOf: () => v4!.vlpi.vlpiMap(m.host.irq.genirq.desc(m.ctx.producer!.irq)),
    vpe,
    hwErrors: () => m.host.irq.gic.its!.commandErrors,
  };
}

describe('update_lpi_config on a forwarded vLPI → its_prop_update_vlpi (vgic-its.c)', () => {
  it('INV after the guest changed the priority: the VCONF byte takes it, with an INV synchronised by VSYNC; nothing is queued on the ap-list', () => {
    const m = forwardedMsi({ busy: true });
    m.host.run(10_000);
    const s = state(m);
    const inv = s.sent(ITS_CMD_INV);
    const vsync = s.sent(ITS_CMD_VSYNC);
    setGuestProp(m, 0x80 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    expect(s.vconf()).toBe(0xa0 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED); // no INV yet: the hardware keeps the old byte
    guestCommands(m, ev(ITS_CMD_INV));
    expect(s.vconf()).toBe(0x80 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    expect([s.sent(ITS_CMD_INV) - inv, s.sent(ITS_CMD_VSYNC) - vsync]).toEqual([1, 1]);
    const irq = m.kvmVm.vgic!.lpis.get(LPI)!;
    expect([irq.priority, irq.vcpu]).toEqual([0x80, null]);
    expect(s.mapOf()!.properties).toBe(0x80 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    m.hw.fire(0);
    m.host.run(20_000);
    expect(m.handler.handled).toBe(1);
    expect([m.kvmVm.vgic!.v4OpErrors, s.hwErrors()]).toEqual([0, 0]);
  });

  it('INV of a disabled byte: the vLPI and its doorbell are off (VMOVI); an MSI waits in the VPT until INV enables it again', () => {
    const m = forwardedMsi({ busy: true });
    m.host.run(10_000);
    const s = state(m);
    const vmovi = s.sent(ITS_CMD_VMOVI);
    setGuestProp(m, 0xa0 | LPI_PROP_GROUP1);
    guestCommands(m, ev(ITS_CMD_INV));
    expect(s.vconf() & LPI_PROP_ENABLED).toBe(0);
    expect(s.sent(ITS_CMD_VMOVI) - vmovi).toBe(1); // its_vlpi_set_doorbell
    expect(s.mapOf()!.dbEnabled).toBe(false);
    m.hw.fire(0);
    m.host.run(20_000);
    expect(m.handler.handled).toBe(0);
    expect(s.vpt()).toBe(true);
    setGuestProp(m, 0xa0 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    guestCommands(m, ev(ITS_CMD_INV));
    m.host.run(20_000);
    expect(m.handler.handled).toBe(1);
    expect(s.vpt()).toBe(false);
  });

  it('INVALL: the VCONF byte is written without an INV, then its_invall_vpe (GICR_INVALLR) makes the redistributor re-read it', () => {
    const m = forwardedMsi({ busy: true });
    m.host.run(10_000);
    const s = state(m);
    setGuestProp(m, 0xa0 | LPI_PROP_GROUP1);
    guestCommands(m, ev(ITS_CMD_INV));
    m.hw.fire(0);
    m.host.run(20_000);
    expect(s.vpt()).toBe(true);
    const inv = s.sent(ITS_CMD_INV);
    setGuestProp(m, 0xa0 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    guestCommands(m, [ITS_CMD_INVALL, 0, 0, 0, 0, 0, 0, 0]);
    expect(s.sent(ITS_CMD_INV)).toBe(inv); // update_lpi_config(…, needs_inv = false)
    m.host.run(20_000);
    expect(m.handler.handled).toBe(1);
  });

  it('GICR_INVLPIR and GICR_INVALLR reach the VCONF as INV and INVALL do (vgic_its_inv_lpi / vgic_its_invall)', () => {
    const m = forwardedMsi({ busy: true });
    m.host.run(10_000);
    const s = state(m);
    const inv = s.sent(ITS_CMD_INV);
    setGuestProp(m, 0x60 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    redistWrite(m, GICR_INVLPIR, LPI);
    expect(s.vconf()).toBe(0x60 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    expect(s.sent(ITS_CMD_INV) - inv).toBe(1); // vgic_its_inv_lpi: needs_inv, as the INV command
    setGuestProp(m, 0x40 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    redistWrite(m, GICR_INVALLR, 0);
    expect(s.vconf()).toBe(0x40 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    expect(s.sent(ITS_CMD_INV) - inv).toBe(1);
    expect(m.kvmVm.vgic!.lpis.get(LPI)!.priority).toBe(0x40);
  });
});

describe('userspace attribute writes run the host calls they queue (kvm->lock held, vCPUs out of KVM_RUN)', () => {
  /** The vCPU thread's KVM_RUN ended by a signal (lock_all_vcpus would fail EBUSY otherwise). */
  function stopped(): M {
    const m = forwardedMsi();
    m.p.threads.find((t) => t.name === 'vcpu0')!.kill(10);
    m.host.settle();
    expect(m.vcpu.inRun).toBe(false);
    return m;
  }

  it('KVM_DEV_ARM_VGIC_GRP_REDIST_REGS GICR_INVLPIR (vgic_v3_redist_uaccess → vgic_mmio_write_invlpi): the VCONF takes the byte', () => {
    const m = stopped();
    setGuestProp(m, 0x60 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    const attr = (BigInt(m.kvmVm.vgic!.vcpus[0]!.mpidrAff) << 32n) | BigInt(GICR_INVLPIR);
    const v = m.p.mem.alloc(8);
    m.p.mem.writeU64(v, BigInt(LPI));
    const a = m.p.mem.alloc(kvmDeviceAttr.size);
    kvmDeviceAttr.write(m.p.mem.view(a, kvmDeviceAttr.size), {
      flags: 0,
      group: KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
      attr,
      addr: BigInt(v),
    });
    m.p.ioctl(m.gic, KVM_SET_DEVICE_ATTR, a);
    expect(state(m).vconf()).toBe(0x60 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    expect(m.kvmVm.vgic!.v4Ops).toEqual([]);
  });

  it('KVM_DEV_ARM_ITS_CTRL_RESET (vgic_its_reset frees every device): the forwarded vLPI is unmapped', () => {
    const m = stopped();
    setU64(m.p, m.its, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_ITS_CTRL_RESET, 0n);
    expect(state(m).desc().forwardedToVcpu).toBe(false);
    expect([m.kvmVm.vgic!.v4Ops.length, m.kvmVm.vgic!.v4OpErrors]).toEqual([0, 0]);
  });
});

describe('the queue of host calls (vgicV4Ops.ts)', () => {
  it('a second path finding the queue being run leaves its calls to the first, which runs them in order', () => {
    const m = forwardedMsi({ busy: true });
    m.host.run(10_000);
    const s = state(m);
    const vgic = m.kvmVm.vgic!;
    const irq = vgic.lpis.get(LPI)!;
    const inv = s.sent(ITS_CMD_INV);
    let second: unknown = 'not asked';
    const t = m.host.engine.spawn(
      'two-paths',
      0,
      (function* () {
        setGuestProp(m, 0x60 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
        updateLpiConfig(vgic, irq, null, true);
        const first = vgicV4FlushOps(m.kvmVm)!;
        setGuestProp(m, 0x40 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
        updateLpiConfig(vgic, irq, null, true);
        second = vgicV4FlushOps(m.kvmVm);
        yield* first;
      })(),
    );
    m.host.engine.runUntil(() => t.state === TASK_DONE, 'both paths');
    expect(second).toBeNull();
    expect(s.sent(ITS_CMD_INV) - inv).toBe(2);
    expect(s.vconf()).toBe(0x40 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    expect([vgic.v4Ops.length, vgic.v4OpsRunning]).toEqual([0, false]);
  });
});

describe('INT / CLEAR of a forwarded vLPI → irq_set_irqchip_state(host_irq, PENDING) (vgic_its_trigger_msi, handle_clear)', () => {
  it('INT: a VINT at the host ITS; the resident vCPU takes it with no exit beyond the command’s own, the emulated latch untouched', () => {
    const m = forwardedMsi({ busy: true });
    m.host.run(10_000);
    const s = state(m);
    const vint = s.sent(ITS_CMD_INT);
    guestCommands(m, ev(ITS_CMD_INT));
    expect(s.sent(ITS_CMD_INT) - vint).toBe(1);
    expect(m.kvmVm.vgic!.lpis.get(LPI)!.pendingLatch).toBe(false);
    m.host.run(20_000);
    expect(m.handler.handled).toBe(1);
  });

  it('INT then CLEAR while the vCPU sleeps in WFI: the VPT bit set and cleared again, nothing delivered, nothing left pending', () => {
    const m = forwardedMsi();
    const s = state(m);
    guestCommands(m, ev(ITS_CMD_INT), ev(ITS_CMD_CLEAR));
    m.host.settle();
    expect(s.vpt()).toBe(false);
    expect(m.handler.handled).toBe(0);
    expect(m.vcpu.wfiSleeping).toBe(true);
    expect(m.kvmVm.vgic!.itsVm!.vpes[0]!.pendingLast).toBe(false);
    expect(m.host.checkInvariants()).toEqual([]);
  });
});

/**
 * The translation kvm_vgic_v4_set_forwarding's vgic_its_resolve_lpi cached while irq->hw was still false is dropped
 * first (any MOVI, DISCARD or MAPC does it): vgic_its_inject_cached_translation does not look at irq->hw, so with it
 * the MSI would set the emulated latch of the forwarded vLPI, as it would upstream.
 */
function forwardedUncached(): M {
  const m = forwardedMsi();
  vgicItsInvalidateCache(m.kvmVm.vgic!);
  return m;
}

describe('the other paths into vgic_its_trigger_msi run the queued host call too', () => {
  it('KVM_SIGNAL_MSI of the forwarded event: a VINT, the sleeping guest woken by its doorbell takes it; no eventfd signal', () => {
    const m = forwardedUncached();
    const s = state(m);
    const vint = s.sent(ITS_CMD_INT);
    const msi = m.guest.its!.msis[0]!;
    const a = place(
      m.p,
      kvmMsi.encode({
        address_lo: msi.address,
        address_hi: 0,
        data: msi.data,
        flags: KVM_MSI_VALID_DEVID,
        devid: DEVID,
        pad: new Array(12).fill(0),
      }),
    );
    expect(m.p.ioctl(m.vm, KVM_SIGNAL_MSI, a)).toBe(1);
    m.host.settle();
    expect(s.sent(ITS_CMD_INT) - vint).toBe(1);
    expect([m.handler.handled, m.ctx.signals]).toEqual([1, 0]);
    expect(m.kvmVm.vgic!.lpis.get(LPI)!.pendingLatch).toBe(false);
  });

  it('userspace writes the irqfd’s eventfd: irqfd_inject → kvm_set_msi → a VINT, delivered once', () => {
    const m = forwardedUncached();
    const vint = state(m).sent(ITS_CMD_INT);
    const buf = m.p.mem.alloc(8);
    m.p.mem.writeU64(buf, 1n);
    m.p.write(m.efd, buf, 8);
    m.host.settle();
    expect(state(m).sent(ITS_CMD_INT) - vint).toBe(1);
    expect(m.handler.handled).toBe(1);
    expect(m.kvmVm.vgic!.lpis.get(LPI)!.pendingLatch).toBe(false);
    expect(m.kvmVm.vgic!.v4OpErrors).toBe(0);
  });
});

describe('its_free_ite of a forwarded vLPI → its_unmap_vlpi (DISCARD, MAPD)', () => {
  it('DISCARD with an MSI in the VPT: the host DISCARD drops it, the LPI is back on the host and the vgic_irq freed; a later MSI reaches the eventfd and is dropped by the vITS', () => {
    const m = forwardedMsi();
    const s = state(m);
    // the vCPU is non-resident in WFI: mask the doorbell path by disabling the byte first, so the MSI stays in the VPT
    setGuestProp(m, 0xa0 | LPI_PROP_GROUP1);
    guestCommands(m, ev(ITS_CMD_INV));
    m.hw.fire(0);
    m.host.settle();
    expect(s.vpt()).toBe(true);
    const discard = s.sent(ITS_CMD_DISCARD);
    guestCommands(m, ev(ITS_CMD_DISCARD));
    m.host.settle();
    expect(s.sent(ITS_CMD_DISCARD) - discard).toBe(1);
    expect(s.vpt()).toBe(false);
    expect(s.desc().forwardedToVcpu).toBe(false);
    expect(m.kvmVm.vgic!.lpis.has(LPI)).toBe(false);
    m.hw.fire(0);
    m.host.settle();
    expect(m.ctx.signals).toBe(1); // vfio_msihandler on the host LPI again
    expect(m.handler.handled).toBe(0);
    expect([m.kvmVm.vgic!.v4OpErrors, s.hwErrors()]).toEqual([0, 0]);
    expect(m.host.checkInvariants()).toEqual([]);
  });

  it('DISCARD, then KVM_IRQFD deassign (unset_forwarding finds no ITE) and teardown: no finding', () => {
    const m = forwardedMsi();
    guestCommands(m, ev(ITS_CMD_DISCARD));
    kvmIrqfd(m.p, m.vm, m.efd, GSI, KVM_IRQFD_FLAG_DEASSIGN);
    m.host.settle();
    expect(state(m).desc().forwardedToVcpu).toBe(false);
    m.p.close(m.vm);
    m.host.settle();
    m.p.exit();
    m.host.settle();
    expect(m.host.findings({ teardown: true })).toEqual([]);
  });

  it('the guest disabled its ITS, so unset_forwarding cannot resolve (-EBUSY): vgic_its_destroy’s its_free_ite calls its_unmap_vlpi, which WARNs once the process exit freed the vector first', () => {
    const m = forwardedMsi();
    const vgic = m.kvmVm.vgic!;
    const desc = state(m).desc();
    mmioExit(m, Number(m.kvmVm.vgicIts[0]!.base) + GITS_CTLR, 0);
    m.p.close(m.vm);
    m.host.settle();
    expect(desc.forwardedToVcpu).toBe(true); // the irqfd's del_producer left it mapped
    m.p.exit(); // the vfio-pci fd goes first (its vectors freed), the VM with its last vCPU fd
    m.host.settle();
    expect([vgic.v4Ops.length, vgic.v4OpErrors]).toEqual([0, 1]); // run, and refused: WARN_ON(its_unmap_vlpi(…))
    expect(m.host.findings({ teardown: true })).toEqual([]);
  });

  it('MAPD V = 0 frees the device’s ITEs: the same unmap', () => {
    const m = forwardedMsi();
    const s = state(m);
    guestCommands(m, [ITS_CMD_MAPD, DEVID, 0, 0, 0, 0, 0, 0]);
    m.host.settle();
    expect(s.desc().forwardedToVcpu).toBe(false);
    expect(m.kvmVm.vgic!.lpis.has(LPI)).toBe(false);
    expect(m.host.checkInvariants()).toEqual([]);
  });

  it('MAPC V = 0 only unlinks the collection (vgic_its_free_collection frees no ITE): the vLPI stays mapped', () => {
    const m = forwardedMsi();
    const s = state(m);
    guestCommands(m, mapc(0, 0, false));
    expect(s.desc().forwardedToVcpu).toBe(true);
    expect(m.kvmVm.vgic!.lpis.get(LPI)!.hw).toBe(true);
  });

  it('a DISCARD then a MAPTI of the same event in one batch: unmapped at the host, the new LPI is emulated (no irqbypass re-run)', () => {
    const m = forwardedMsi();
    const s = state(m);
    guestCommands(m, ev(ITS_CMD_DISCARD), [ITS_CMD_MAPTI, DEVID, 0, LPI, 0, 0, 0, 0]);
    m.host.settle();
    expect(s.desc().forwardedToVcpu).toBe(false);
    expect(m.kvmVm.vgic!.lpis.get(LPI)!.hw).toBe(false);
    m.hw.fire(0);
    m.host.settle();
    expect([m.ctx.signals, m.handler.handled]).toEqual([1, 1]); // vfio → eventfd → irqfd → vgic_its_inject_msi
  });
});

describe('update_affinity of a forwarded vLPI → its_map_vlpi with the new vPE (MOVI, MOVALL)', () => {
  it.each([
    ['MOVI', [movi(1)]],
    ['MOVALL', [[ITS_CMD_MOVALL, 0, 0, 0, 0, 0, 1 << 16, 0]]],
  ])(
    '%s to vCPU 1: one VMOVI, the host’s map names vPE 1 (the guest-visible delivery: test/e2e/vgicV4.test.ts)',
    (_name, cmds) => {
      const m = forwardedMsi({ vcpus: 2 });
      const s = state(m);
      const vmovi = s.sent(ITS_CMD_VMOVI);
      guestCommands(m, ...cmds);
      expect(s.sent(ITS_CMD_VMOVI) - vmovi).toBe(1);
      expect(s.mapOf()!.vpe).toBe(s.vpe(1));
      expect(m.kvmVm.vgic!.lpis.get(LPI)!.targetVcpuIdx).toBe(1);
      expect([m.kvmVm.vgic!.v4OpErrors, s.hwErrors()]).toEqual([0, 0]);
    },
  );

  it('MOVI with the vLPI pending in vPE 0’s VPT: the VMOVI moves the pending state to vPE 1', () => {
    const m = forwardedMsi({ vcpus: 2 });
    const s = state(m);
    setGuestProp(m, 0xa0 | LPI_PROP_GROUP1);
    guestCommands(m, ev(ITS_CMD_INV));
    m.hw.fire(0);
    m.host.settle();
    expect([s.vpt(0), s.vpt(1)]).toEqual([true, false]);
    guestCommands(m, movi(1));
    m.host.settle();
    expect([s.vpt(0), s.vpt(1)]).toEqual([false, true]);
  });

  it('a forwarded vLPI is not cached again (vgic_its_cache_translation: "Do not cache a directly injected interrupt")', () => {
    const m = forwardedMsi();
    const vgic = m.kvmVm.vgic!;
    const irq = vgic.lpis.get(LPI)!;
    vgicItsInvalidateCache(vgic);
    vgicItsCacheTranslation(vgic, 0x0809_0040, DEVID, 0, irq);
    expect(vgic.lpiTranslationCache.some((c) => c.irq === irq)).toBe(false);
  });
});
