import { describe, expect, it } from 'vitest';
import { guestConfig, guestEnable, HOST_IRQ_BASE, makeHarness } from '../../../test/fixtures/vgicHarness.js';
import {
  GIC_DIST_ACTIVE_CLEAR,
  GIC_DIST_ACTIVE_SET,
  GIC_DIST_CONFIG,
  GIC_DIST_CTR,
  GIC_DIST_CTRL,
  GIC_DIST_ENABLE_CLEAR,
  GIC_DIST_ENABLE_SET,
  GIC_DIST_IIDR,
  GIC_DIST_PENDING_CLEAR,
  GIC_DIST_PENDING_SET,
  GIC_DIST_PRI,
  GIC_DIST_TARGET,
} from '../../hw/gic/regs.js';
import { ModelError } from '../../sim/errors.js';
import { VGIC_CONFIG_EDGE, VGIC_CONFIG_LEVEL } from './vgicIrq.js';
import { vgicMmioAccessNeedsHalt, vgicMmioRead, vgicMmioWrite } from './vgicMmioV2.js';

describe('vGIC-v2 distributor MMIO: identification and control', () => {
  it('TYPER reports nr_irqs/32-1 and vCPUs-1; IIDR is KVM/ARM rev 3; CTLR enable kicks vCPUs with work', () => {
    const h = makeHarness({ vcpus: 2, nrIrqs: 128 });
    const [v0] = h.vcpus;
    expect(vgicMmioRead(v0!, GIC_DIST_CTR, 4)).toBe(3 | (1 << 5));
    expect(vgicMmioRead(v0!, GIC_DIST_IIDR, 4)).toBe(0x4b00343b);
    expect(vgicMmioRead(v0!, GIC_DIST_CTRL, 4)).toBe(1);
    vgicMmioWrite(v0!, GIC_DIST_CTRL, 4, 0);
    expect(vgicMmioRead(v0!, GIC_DIST_CTRL, 4)).toBe(0);
    guestEnable(v0!, 40);
    h.vgic.kvmVgicInjectIrq(null, 40, true);
    expect(v0!.apCount).toBe(0); // GICD disabled: the oracle routes nowhere
    h.kicks.length = 0;
    vgicMmioWrite(v0!, GIC_DIST_CTRL, 4, 1);
    expect(h.kicks).toEqual([]); // not listed anywhere yet: vgic_kick_vcpus only kicks vCPUs with ap-list work
    vgicMmioWrite(v0!, GIC_DIST_CTR, 4, 0xffffffff); // TYPER is WI
    expect(vgicMmioRead(v0!, GIC_DIST_CTR, 4)).toBe(3 | (1 << 5));
  });
});

describe('vGIC-v2 distributor MMIO: per-IRQ registers', () => {
  it('ISENABLER/ICENABLER set and clear; both read the enable bits; SGIs start enabled', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    expect(vgicMmioRead(v!, GIC_DIST_ENABLE_SET, 4)).toBe(0xffff);
    vgicMmioWrite(v!, GIC_DIST_ENABLE_SET + 4, 4, 0b101);
    expect(vgicMmioRead(v!, GIC_DIST_ENABLE_SET + 4, 4)).toBe(0b101);
    vgicMmioWrite(v!, GIC_DIST_ENABLE_CLEAR + 4, 4, 0b001);
    expect(vgicMmioRead(v!, GIC_DIST_ENABLE_CLEAR + 4, 4)).toBe(0b100);
    expect(h.vgic.vgicGetIrq(34)!.enabled).toBe(true);
    expect(h.vgic.vgicGetIrq(32)!.enabled).toBe(false);
  });

  it('ISPENDR makes a vIRQ pending and queues it; ICPENDR clears the latch; SGI bits are WI', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    guestEnable(v!, 33);
    vgicMmioWrite(v!, GIC_DIST_PENDING_SET + 4, 4, 0b10);
    expect(vgicMmioRead(v!, GIC_DIST_PENDING_SET + 4, 4)).toBe(0b10);
    expect(v!.apCount).toBe(1);
    vgicMmioWrite(v!, GIC_DIST_PENDING_CLEAR + 4, 4, 0b10);
    expect(vgicMmioRead(v!, GIC_DIST_PENDING_CLEAR + 4, 4)).toBe(0);
    vgicMmioWrite(v!, GIC_DIST_PENDING_SET, 4, 0b1);
    expect(vgicMmioRead(v!, GIC_DIST_PENDING_SET, 4)).toBe(0);
  });

  it('a level vIRQ stays pending through ICPENDR while its line is high', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    guestConfig(v!, 40, false);
    h.vgic.kvmVgicInjectIrq(null, 40, true);
    vgicMmioWrite(v!, GIC_DIST_PENDING_CLEAR + 4, 4, 1 << 8);
    expect(vgicMmioRead(v!, GIC_DIST_PENDING_SET + 4, 4)).toBe(1 << 8);
  });

  it('IPRIORITYR: byte and word writes, narrowed to 5 bits', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    vgicMmioWrite(v!, GIC_DIST_PRI + 40, 1, 0xa7);
    expect(h.vgic.vgicGetIrq(40)!.priority).toBe(0xa0);
    vgicMmioWrite(v!, GIC_DIST_PRI + 44, 4, 0x11223344);
    expect(vgicMmioRead(v!, GIC_DIST_PRI + 44, 4)).toBe(0x10203040);
    expect(vgicMmioRead(v!, GIC_DIST_PRI + 46, 1)).toBe(0x20);
    expect(vgicMmioRead(v!, GIC_DIST_PRI + 40, 4)).toBe(0xa0);
  });

  it('ITARGETSR: private bytes are read-only (own CPU); SPI targets are masked to online vCPUs and route', () => {
    const h = makeHarness({ vcpus: 2 });
    const [v0, v1] = h.vcpus;
    expect(vgicMmioRead(v1!, GIC_DIST_TARGET + 4, 4)).toBe(0x02020202);
    vgicMmioWrite(v0!, GIC_DIST_TARGET + 4, 4, 0xffffffff);
    expect(vgicMmioRead(v0!, GIC_DIST_TARGET + 4, 4)).toBe(0x01010101);
    vgicMmioWrite(v0!, GIC_DIST_TARGET + 40, 1, 0xfe);
    const irq = h.vgic.vgicGetIrq(40)!;
    expect(irq.targets).toBe(0b10);
    expect(h.vgic.targetVcpuOf(irq)).toBe(v1);
    expect(vgicMmioRead(v0!, GIC_DIST_TARGET + 40, 4)).toBe(0b10);
    guestEnable(v0!, 40);
    h.vgic.kvmVgicInjectIrq(null, 40, true);
    expect(v1!.apCount).toBe(1);
  });

  it('ICFGR: SGI and PPI configuration is read-only; SPIs switch between edge and level', () => {
    const h = makeHarness();
    const [v] = h.vcpus;
    expect(vgicMmioRead(v!, GIC_DIST_CONFIG, 4)).toBe(0xaaaaaaaa);
    expect(vgicMmioRead(v!, GIC_DIST_CONFIG + 4, 4)).toBe(0);
    vgicMmioWrite(v!, GIC_DIST_CONFIG + 4, 4, 0xaaaaaaaa);
    expect(vgicMmioRead(v!, GIC_DIST_CONFIG + 4, 4)).toBe(0);
    expect(vgicMmioRead(v!, GIC_DIST_CONFIG + 8, 4)).toBe(0xaaaaaaaa); // SPIs start edge
    guestConfig(v!, 33, false);
    expect(h.vgic.vgicGetIrq(33)!.config).toBe(VGIC_CONFIG_LEVEL);
    expect(h.vgic.vgicGetIrq(32)!.config).toBe(VGIC_CONFIG_EDGE);
  });

  it('RAZ/WI: INTIDs past nr_irqs, byte access to a 32-bit-only register, unaligned access', () => {
    const h = makeHarness({ nrIrqs: 64 });
    const [v] = h.vcpus;
    vgicMmioWrite(v!, GIC_DIST_ENABLE_SET + 8, 4, 0xffffffff); // INTIDs 64-95 do not exist
    expect(vgicMmioRead(v!, GIC_DIST_ENABLE_SET + 8, 4)).toBe(0);
    vgicMmioWrite(v!, GIC_DIST_ENABLE_SET + 4, 1, 0xff);
    expect(vgicMmioRead(v!, GIC_DIST_ENABLE_SET + 4, 4)).toBe(0);
    expect(vgicMmioRead(v!, GIC_DIST_PRI + 41, 4)).toBe(0);
    expect(vgicMmioRead(v!, 0xfe8, 4)).toBe(0); // no register there
  });
});

describe('vGIC-v2 distributor MMIO: HW-mapped vIRQs act on the physical interrupt', () => {
  function mapped() {
    const h = makeHarness();
    const [v] = h.vcpus;
    const dist = h.gic.distributor;
    dist.setConfig(40, 'level');
    guestConfig(v!, 64, false);
    expect(h.vgic.kvmVgicMapPhysIrq(v!, HOST_IRQ_BASE + 40, 64)).toBe(0);
    return { h, v: v!, dist };
  }

  it('ISENABLER is a virtual enable only (the physical enable is the host’s) and resamples the line', () => {
    const { h, v, dist } = mapped();
    expect(dist.isEnabled(40)).toBe(false);
    guestEnable(v, 64);
    expect(dist.isEnabled(40)).toBe(false);
    expect(h.vgic.vgicGetIrq(64)!.enabled).toBe(true);
    expect(h.physCalls).toEqual(['get PENDING 40']);
  });

  it('ISENABLER drops the physical active state when the line fell while the vIRQ was disabled', () => {
    const { h, v, dist } = mapped();
    h.vgic.kvmVgicInjectIrq(null, 64, true); // line_level high, vIRQ disabled: not queued
    dist.setActive(40, true); // the host left it active (forwarded)
    guestEnable(v, 64); // the physical line is low by now
    expect(dist.isActive(40)).toBe(false);
    expect(h.vgic.vgicGetIrq(64)!.lineLevel).toBe(false);
  });

  it('ICACTIVER / ISACTIVER change the physical active state too', () => {
    const { h, v, dist } = mapped();
    vgicMmioWrite(v, GIC_DIST_ACTIVE_SET + 8, 4, 1);
    expect(dist.isActive(40)).toBe(true);
    expect(h.vgic.vgicGetIrq(64)!.active).toBe(true);
    expect(vgicMmioRead(v, GIC_DIST_ACTIVE_SET + 8, 4)).toBe(1);
    expect(v.apCount).toBe(1); // an active vIRQ is listed
    vgicMmioWrite(v, GIC_DIST_ACTIVE_CLEAR + 8, 4, 1);
    expect(dist.isActive(40)).toBe(false);
    expect(h.vgic.vgicGetIrq(64)!.active).toBe(false);
  });

  it('ICPENDR clears the physical pending and (if the vIRQ is not active) active state', () => {
    const { h, v, dist } = mapped();
    vgicMmioWrite(v, GIC_DIST_PENDING_SET + 8, 4, 1);
    expect(dist.isActive(40)).toBe(true); // SPENDR on HW: physical active so it cannot fire meanwhile
    dist.setPending(40);
    vgicMmioWrite(v, GIC_DIST_PENDING_CLEAR + 8, 4, 1);
    expect(dist.isPending(40)).toBe(false);
    expect(dist.isActive(40)).toBe(false);
    expect(h.vgic.vgicGetIrq(64)!.pendingLatch).toBe(false);
  });

  it('changing the active state of a vIRQ held in an LR is refused: the caller must halt and sync first', () => {
    const { h, v } = mapped();
    guestEnable(v, 64);
    h.vgic.kvmVgicInjectIrq(null, 64, true);
    h.vgic.kvmVgicFlushHwstate(v);
    expect(vgicMmioAccessNeedsHalt(v, GIC_DIST_ACTIVE_CLEAR + 8, 4)).toBe(true);
    expect(vgicMmioAccessNeedsHalt(v, GIC_DIST_ACTIVE_CLEAR, 4)).toBe(false);
    expect(() => vgicMmioWrite(v, GIC_DIST_ACTIVE_CLEAR + 8, 4, 1)).toThrow(ModelError);
  });
});
