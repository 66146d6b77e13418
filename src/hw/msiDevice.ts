/**
 * A PCI function with N message-signalled interrupt vectors (PCI Local Bus 3.0 §6.8: the MSI and MSI-X
 * capabilities), as the interrupt side of a device sees it: software programs each vector with a message — an
 * address and a data word — and enables the capability; to interrupt, the device makes a posted memory write of the
 * data to the address. On an arm64 host with a GICv3 ITS that address is GITS_TRANSLATER and the data the EventID;
 * the interconnect attaches the writer's DeviceID (its requester ID through the SMMU/ITS mapping). A masked vector
 * (MSI-X Vector Control.Mask, or MSI's per-vector mask bits) latches its interrupt in the pending bits and sends it
 * when unmasked. Config space, BARs and DMA are not modelled.
 */
import { ModelError } from '../sim/errors.js';
import { touch } from '../sim/footprint.js';
import { GITS_TRANSLATER, type Gicv3Its } from './gicv3/its.js';

/** Where a posted write lands: the system's interconnect, which knows which target claims an address. */
export interface MsiBus {
  /** A posted write of `data` to `address` from `deviceId`; false when no target claims the address. */
  msiWrite(address: number, data: number, deviceId: number): boolean;
}

export class MsiDevice {
  /** Per vector: the programmed message address and data (0/0: never programmed or cleared). */
  private readonly address: Float64Array;
  private readonly data: Uint32Array;
  private readonly masked: Uint8Array;
  private readonly pending: Uint8Array;
  /** MSI Enable / MSI-X Enable of the capability control register. */
  enabled = false;
  /** Per vector: interrupts the device raised, messages it wrote, and raises that found no message to send. */
  readonly raised: Int32Array;
  readonly sent: Int32Array;
  readonly dropped: Int32Array;

  constructor(
    readonly name: string,
    /** The requester ID the interconnect attaches to this function's writes (the ITS DeviceID). */
    readonly deviceId: number,
    readonly nrVectors: number,
    private readonly bus: MsiBus,
    /** The checker's object id of the device's vector state; -1: not tracked. */
    readonly oid = -1,
  ) {
    if (!Number.isInteger(nrVectors) || nrVectors < 1 || nrVectors > 2048) {
      throw new ModelError(`${name}: ${nrVectors} MSI vectors (1..2048)`);
    }
    this.address = new Float64Array(nrVectors);
    this.data = new Uint32Array(nrVectors);
    this.masked = new Uint8Array(nrVectors);
    this.pending = new Uint8Array(nrVectors);
    this.raised = new Int32Array(nrVectors);
    this.sent = new Int32Array(nrVectors);
    this.dropped = new Int32Array(nrVectors);
  }

  private check(k: number): void {
    if (!Number.isInteger(k) || k < 0 || k >= this.nrVectors) {
      throw new ModelError(`${this.name}: no MSI vector ${k} (has ${this.nrVectors})`);
    }
    touch(this.oid);
  }

  /** Software programs vector k's message (pci_write_msi_msg); address 0 clears it. */
  writeMsg(k: number, address: number, data: number): void {
    this.check(k);
    this.address[k] = address;
    this.data[k] = data >>> 0;
  }

  msg(k: number): { address: number; data: number } {
    this.check(k);
    return { address: this.address[k]!, data: this.data[k]! };
  }

  /** The vector's mask bit; unmasking a vector with a latched interrupt sends it. */
  setMasked(k: number, masked: boolean): void {
    this.check(k);
    this.masked[k] = masked ? 1 : 0;
    if (!masked && this.pending[k] === 1 && this.enabled) {
      this.pending[k] = 0;
      this.send(k);
    }
  }

  isMasked(k: number): boolean {
    return this.masked[k] === 1;
  }

  isPending(k: number): boolean {
    return this.pending[k] === 1;
  }

  /** The device interrupts on vector k: a posted write of its message, or a latched pending bit while masked. */
  fire(k: number): void {
    this.check(k);
    this.raised[k]!++;
    if (!this.enabled) {
      this.dropped[k]!++; // MSI disabled: the function may not signal at all
      return;
    }
    if (this.masked[k] === 1) {
      this.pending[k] = 1;
      return;
    }
    this.send(k);
  }

  private send(k: number): void {
    if (this.address[k] === 0 || !this.bus.msiWrite(this.address[k]!, this.data[k]!, this.deviceId)) {
      this.dropped[k]!++;
      return;
    }
    this.sent[k]!++;
  }
}

/** The interconnect of a GICv3 system: a write to the ITS's GITS_TRANSLATER reaches it with the writer's DeviceID. */
export class ItsMsiBus implements MsiBus {
  constructor(
    private readonly its: Gicv3Its,
    /** Physical base of the ITS's control frame (the translation frame is 64 KiB above). */
    readonly itsBase: number,
  ) {}

  msiWrite(address: number, data: number, deviceId: number): boolean {
    if (address !== this.itsBase + GITS_TRANSLATER) return false;
    this.its.write(GITS_TRANSLATER, data, deviceId);
    return true;
  }
}
