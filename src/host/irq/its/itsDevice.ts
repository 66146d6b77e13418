/**
 * struct its_device and struct event_lpi_map (irq-gic-v3-its.c): a DeviceID the ITS has mapped, its interrupt
 * translation table (ITT) in memory, and the block of LPIs it owns — which of them are allocated (lpi_map) and the
 * CPU each event's collection is (col_map).
 */
import type { ItsNode } from './itsNode.js';

export class ItsDevice {
  /** lpi_map: one byte per LPI of the block, 1 = allocated to an IRQ. */
  readonly lpiMap: Uint8Array;
  /** col_map: per event, the CPU (= collection) its LPI targets. */
  readonly colMap: Int32Array;
  /** Another user of the same DeviceID was seen (its_msi_prepare found it): never torn down by the free path. */
  shared = false;

  constructor(
    readonly its: ItsNode,
    readonly deviceId: number,
    /** Physical address of the ITT (ITS_ITT_ALIGN-aligned) and its entries (a power of two, at least 2). */
    readonly itt: number,
    readonly nrItes: number,
    /** The first LPI of the block and how many (a power of two; its_lpi_alloc may give fewer than asked). */
    readonly lpiBase: number,
    readonly nrLpis: number,
  ) {
    this.lpiMap = new Uint8Array(nrLpis);
    this.colMap = new Int32Array(nrLpis);
  }

  /** bitmap_empty(lpi_map). */
  get lpiMapEmpty(): boolean {
    return this.lpiMap.every((b) => b === 0);
  }
}
