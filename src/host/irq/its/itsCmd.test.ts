/**
 * The ITS command codec (its_encode_* / its_build_*_cmd of irq-gic-v3-its.c): every field round-trips through a
 * command block, fields never overlap within one command, and what the driver encodes is what the hardware model
 * (src/hw/gicv3/its.ts) decodes and executes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GITS_CBASER,
  GITS_CBASER_VALID_HI,
  GITS_CTLR,
  GITS_CTLR_ENABLED,
  GITS_CWRITER,
  Gicv3Its,
  ITS_CMD_MAPC,
  ITS_CMD_MAPD,
  ITS_CMD_MAPTI,
  ITS_CMD_MOVI,
} from '../../../hw/gicv3/its.js';
import { Gicv3Lpis, LPI_BASE } from '../../../hw/gicv3/lpi.js';
import { PhysicalMemory } from '../../../hw/physMem.js';
import {
  type ItsCmdBlock,
  itsBuildMapcCmd,
  itsBuildMapdCmd,
  itsBuildMaptiCmd,
  itsBuildMoviCmd,
  itsDecodeCmd,
} from './itsCmd.js';

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
/** A 52-bit physical address aligned to `align`. */
const pa = (align: number) => fc.integer({ min: 0, max: 2 ** 52 / align - 1 }).map((n) => n * align);

describe('ITS command codec (its_encode_*)', () => {
  it('MAPD carries DeviceID, Size = log2(nr_ites) - 1, ITT_addr[51:8], V', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 1, max: 31 }), pa(256), fc.boolean(), (dev, bits, itt, v) => {
        expect(itsDecodeCmd(itsBuildMapdCmd(dev, 2 ** bits, itt, v))).toMatchObject({
          cmd: ITS_CMD_MAPD,
          devId: dev,
          size: bits - 1,
          ittAddr: itt,
          valid: v,
        });
      }),
    );
  });

  it('MAPC, MAPTI and MOVI carry their fields unchanged', () => {
    fc.assert(
      fc.property(u16, pa(0x10000), fc.boolean(), u32, u32, u32, (col, target, v, dev, ev, lpi) => {
        expect(itsDecodeCmd(itsBuildMapcCmd(col, target, v))).toMatchObject({
          cmd: ITS_CMD_MAPC,
          col,
          target,
          valid: v,
        });
        expect(itsDecodeCmd(itsBuildMaptiCmd(dev, ev, lpi, col))).toMatchObject({
          cmd: ITS_CMD_MAPTI,
          devId: dev,
          eventId: ev,
          physId: lpi,
          col,
          valid: false,
        });
        expect(itsDecodeCmd(itsBuildMoviCmd(dev, ev, col))).toMatchObject({ cmd: ITS_CMD_MOVI, devId: dev, col });
      }),
    );
  });

  it('what the driver encodes, the hardware ITS executes: MAPC, MAPD, MAPTI → the translation', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 1, max: 8 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 3 }),
        (dev, bits, evSeed, lpiOff, pe) => {
          const memory = new PhysicalMemory();
          const lpis = new Gicv3Lpis({ nrPes: 4, nrLpis: 256, memory, onChange: { lpiChanged() {} } });
          const its = new Gicv3Its({ lpis, memory });
          const queue = 0x10000;
          let at = 0;
          const put = (c: ItsCmdBlock) => {
            for (let i = 0; i < 4; i++) memory.writeU64(queue + at + 8 * i, c[2 * i]!, c[2 * i + 1]!);
            at += 32;
          };
          const ev = evSeed % 2 ** bits;
          put(itsBuildMapcCmd(9, pe << 16, true));
          put(itsBuildMapdCmd(dev, 2 ** bits, 0x20000, true));
          put(itsBuildMaptiCmd(dev, ev, LPI_BASE + lpiOff, 9));
          its.write(GITS_CBASER + 4, GITS_CBASER_VALID_HI);
          its.write(GITS_CBASER, queue);
          its.write(GITS_CTLR, GITS_CTLR_ENABLED);
          its.write(GITS_CWRITER, at);
          expect(its.commandErrors).toBe(0);
          expect(its.mapping(dev, ev)).toEqual({ lpi: LPI_BASE + lpiOff, pe });
        },
      ),
      { numRuns: 50 },
    );
  });
});
