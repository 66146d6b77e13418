/**
 * struct its_node of drivers/irqchip/irq-gic-v3-its.c (Linux 6.1): one ITS as the host driver knows it — its
 * registers, the command queue it writes (ITS_CMD_QUEUE_SZ = 64 KiB in memory, `cmd_write` the next free slot),
 * its->lock (a raw spinlock: command submission), dev_alloc_lock (a mutex: its_device creation and teardown), one
 * collection per CPU, and the list of devices whose DeviceIDs it has mapped.
 *
 * The queue is written in two halves the command frame (itsCmdQueue.ts) and the boot code share: itsQueueCommand
 * (its_allocate_entry + the builder's write + its_flush_cmd) and itsPostCommands (GITS_CWRITER).
 */
import { GITS_CREADR, GITS_CWRITER, type Gicv3Its, ITS_CMD_SIZE } from '../../../hw/gicv3/its.js';
import type { Engine } from '../../../sim/engine.js';
import { Mutex, Spinlock } from '../../../sim/locks.js';
import type { ItsCmdBlock } from './itsCmd.js';
import type { ItsDevice } from './itsDevice.js';
import type { PhysPages } from './physPages.js';

/** ITS_CMD_QUEUE_SZ and its entries. */
export const ITS_CMD_QUEUE_SZ = 64 * 1024;
export const ITS_CMD_QUEUE_NR_ENTRIES = ITS_CMD_QUEUE_SZ / ITS_CMD_SIZE;
/** QEMU virt's GITS base (hw/arm/virt.c VIRT_GIC_ITS): where devices send their MSI writes. */
export const ITS_PHYS_BASE = 0x0808_0000;

/** struct its_collection: a CPU's collection, its ICID and the redistributor it targets. */
export interface ItsCollection {
  /** GITS_TYPER.PTA = 0: the processor number << 16; ~0 (here -1) until its_cpu_init_collection. */
  targetAddress: number;
  colId: number;
}

export class ItsNode {
  readonly lock: Spinlock;
  readonly devAllocLock: Mutex;
  /** Physical address of the command queue (GITS_CBASER), and the next slot the driver writes (its->cmd_write). */
  readonly cmdBase: number;
  cmdWrite = 0;
  readonly collections: ItsCollection[];
  /** its->its_device_list, in creation order. */
  readonly devices: ItsDevice[] = [];
  /** Commands written to the queue, by command number (tests and checkers read what the driver issued). */
  readonly sent = new Int32Array(256);
  /** The driver's pr_err lines ("ITS queue timeout", "ITS can't allocate, dropping command"). */
  readonly log: string[] = [];

  constructor(
    engine: Engine,
    readonly hw: Gicv3Its,
    readonly pages: PhysPages,
    nrCpus: number,
    readonly physBase = ITS_PHYS_BASE,
  ) {
    this.lock = new Spinlock(engine, 'its->lock');
    this.devAllocLock = new Mutex(engine, 'its->dev_alloc_lock');
    this.cmdBase = pages.alloc(ITS_CMD_QUEUE_SZ, ITS_CMD_QUEUE_SZ);
    this.collections = Array.from({ length: nrCpus }, () => ({ targetAddress: -1, colId: 0 }));
  }

  /** its_cmd_ptr_to_offset of cmd_write: the byte offset GITS_CWRITER takes. */
  get writeOffset(): number {
    return this.cmdWrite * ITS_CMD_SIZE;
  }

  /** its_find_device. */
  findDevice(devId: number): ItsDevice | undefined {
    return this.devices.find((d) => d.deviceId === devId);
  }
}

/** its_queue_full: the slot after cmd_write is the one GITS_CREADR points at. */
export function itsQueueFull(its: ItsNode): boolean {
  const ridx = its.hw.read(GITS_CREADR) / ITS_CMD_SIZE;
  return (its.cmdWrite + 1) % ITS_CMD_QUEUE_NR_ENTRIES === ridx;
}

/**
 * its_allocate_entry after its queue-full poll succeeded, the builder's write of `cmd` into the slot and its_flush_cmd
 * (the dsb: the model's memory is coherent). The caller has checked itsQueueFull.
 */
export function itsQueueCommand(its: ItsNode, cmd: ItsCmdBlock): void {
  const at = its.cmdBase + its.writeOffset;
  for (let i = 0; i < 4; i++) its.pages.memory.writeU64(at + 8 * i, cmd[2 * i]!, cmd[2 * i + 1]!);
  its.sent[cmd[0]! & 0xff]!++;
  its.cmdWrite = (its.cmdWrite + 1) % ITS_CMD_QUEUE_NR_ENTRIES;
}

/** its_post_commands: publish everything up to cmd_write (GITS_CWRITER); the offset written. */
export function itsPostCommands(its: ItsNode): number {
  const wr = its.writeOffset;
  its.hw.write(GITS_CWRITER, wr);
  return wr;
}
