import { describe, expect, it } from 'vitest';
import { Gicv3 } from './gicv3.js';
import {
  GICD_CTLR,
  GICD_CTLR_ENABLE_G0,
  GICD_CTLR_ENABLE_G1,
  GICD_ICENABLER,
  GICD_IGROUPR,
  GICD_IPRIORITYR,
  GICD_IROUTER,
  GICD_ISENABLER,
  GICD_TYPER,
  GICR_ICENABLER0,
  GICR_ISENABLER0,
  GICR_SGI_BASE,
  GICR_TYPER,
  GICR_TYPER_LAST,
  GICR_WAKER,
  GICR_WAKER_CHILDREN_ASLEEP,
  GICR_WAKER_PROCESSOR_SLEEP,
  ICC_CTLR_EOIMODE,
  packAffinity,
} from './regs.js';

/** The bring-up of Linux's irq-gic-v3.c, through registers only; returns the PE each redistributor was found for. */
function linuxInit(gic: Gicv3, mpidrs: number[]): number[] {
  const d = gic.distributor;
  d.write(GICD_CTLR, 0); // gic_dist_init: disable, then configure every SPI
  const lines = ((d.read(GICD_TYPER) & 0x1f) + 1) * 32;
  for (let i = 32; i < lines; i += 32) {
    d.write(GICD_IGROUPR + i / 8, 0xffffffff);
    d.write(GICD_ICENABLER + i / 8, 0xffffffff);
  }
  for (let i = 32; i < lines; i += 4) d.write(GICD_IPRIORITYR + i, 0xa0a0a0a0);
  d.write(GICD_CTLR, GICD_CTLR_ENABLE_G0 | GICD_CTLR_ENABLE_G1);
  for (let i = 32; i < lines; i++) {
    d.write(GICD_IROUTER + i * 8, mpidrs[0]! & 0xffffff); // route to the boot CPU
    d.write(GICD_IROUTER + i * 8 + 4, 0);
  }
  const found: number[] = [];
  for (const mpidr of mpidrs) {
    // gic_populate_rdist: walk the redistributors until GICR_TYPER's affinity matches MPIDR, stop at Last.
    for (const rd of gic.redistributors) {
      const typer = rd.read(GICR_TYPER);
      if (rd.read(GICR_TYPER + 4) === mpidr) {
        found.push(rd.pe);
        rd.write(GICR_WAKER, rd.read(GICR_WAKER) & ~GICR_WAKER_PROCESSOR_SLEEP); // gic_enable_redist
        expect(rd.read(GICR_WAKER) & GICR_WAKER_CHILDREN_ASLEEP).toBe(0);
        rd.write(GICR_SGI_BASE + GICR_ICENABLER0, 0xffff0000);
        rd.write(GICR_SGI_BASE + GICR_ISENABLER0, 0x0000ffff);
        const c = gic.cpu(rd.pe); // gic_cpu_sys_reg_init
        c.setPmr(0xf0);
        c.setBpr1(0);
        c.setCtlr(ICC_CTLR_EOIMODE);
        c.setIgrpen1(1);
        break;
      }
      if ((typer & GICR_TYPER_LAST) !== 0) break;
    }
  }
  return found;
}

describe('Gicv3 assembled and brought up as irq-gic-v3.c does', () => {
  it('finds every redistributor by affinity, routes SPIs to the boot CPU, and takes an SGI across clusters', () => {
    const mpidrs = [packAffinity(0, 0, 0, 0), packAffinity(0, 0, 0, 1), packAffinity(0, 0, 1, 0)];
    const lines: string[] = [];
    const gic = new Gicv3({
      nrPes: 3,
      nrIrqs: 64,
      affinities: mpidrs,
      irqSink: { setIrqLine: (pe, l) => lines.push(`${pe}:${l ? 1 : 0}`) },
    });
    expect(linuxInit(gic, mpidrs)).toEqual([0, 1, 2]);
    const d = gic.distributor;
    d.setLine(40, true);
    d.write(GICD_ISENABLER + 4, 1 << 8);
    expect(lines).toEqual(['0:1']);
    const c0 = gic.cpu(0);
    expect(c0.readIar1()).toBe(40);
    c0.writeEoir1(40);
    d.setLine(40, false);
    c0.writeDir(40);
    expect(d.isActive(40)).toBe(false);
    // gic_send_sgi from PE 0 to PE 2 (cluster Aff1 = 1, Aff0 = 0)
    c0.writeSgi1r((1 << 24) | (1 << 16) | 1, 0);
    expect(gic.cpu(2).irqLine).toBe(true);
    expect(gic.cpu(2).readIar1()).toBe(1);
    expect(lines).toEqual(['0:1', '0:0', '2:1', '2:0']);
    expect(gic.cpuInterfaces.every((c) => c.unpredictableCount === 0)).toBe(true);
  });

  it('gives each PE its own redistributor, CPU interface and virtual interface', () => {
    const gic = new Gicv3({ nrPes: 2, nrIrqs: 64, nrLrs: 8 });
    expect(gic.vif(1).nrLrs).toBe(8);
    expect(gic.redistributor(1).pe).toBe(1);
    expect(gic.cpu(0).pe).toBe(0);
    expect(() => gic.cpu(2)).toThrow(/bad PE 2/);
  });
});
