/**
 * its_send_single_command (BUILD_SINGLE_CMD_FUNC of irq-gic-v3-its.c, Linux 6.1) as a frame: under its->lock
 * (raw_spin_lock_irqsave), allocate a queue slot (polling GITS_CREADR while the queue is full), write the command,
 * then — when the command names a redistributor to synchronise with — a SYNC (or, for GICv4 commands, a VSYNC) in
 * the next slot; read GITS_CREADR (rd_idx), write GITS_CWRITER, drop the lock, and poll GITS_CREADR until the ITS
 * has consumed everything posted (its_wait_for_range_completion, wrap-around included). A queue that stays full or a
 * completion that never comes gives up after 1,000,000 polls with the kernel's pr_err (in ItsNode.log).
 *
 * Callers build both blocks beforehand (itsCmd.ts): the builder of the kernel runs under the lock, but reads only
 * its_device / its_collection fields that its callers keep stable, so building first changes nothing observable.
 */
import { GITS_CREADR } from '../../../hw/gicv3/its.js';
import { defineCost } from '../../../sim/costs.js';
import { type Boundary, Frame } from '../../../sim/frame.js';
import { spinLockIrqsave, spinUnlockIrqrestore } from '../../../sim/locks.js';
import { cpuRelax, op } from '../../../sim/task.js';
import type { ItsCmdBlock } from './itsCmd.js';
import { ITS_CMD_QUEUE_SZ, type ItsNode, itsPostCommands, itsQueueCommand, itsQueueFull } from './itsNode.js';

const NO_DATA = 'no published figure for GIC-600 ITS register accesses; as a GICD access; estimate';
export const C_GITS_READ = defineCost('gits_read', 100, `GITS_CREADR read (readl_relaxed); ${NO_DATA}`);
export const C_GITS_WRITE = defineCost('gits_write', 100, `GITS_CWRITER write (writel_relaxed); ${NO_DATA}`);
export const C_ITS_CMD_BUILD = defineCost(
  'its_cmd_build',
  60,
  'its_allocate_entry + its_build_*_cmd (four 64-bit stores) + its_flush_cmd (dsb ishst); estimate',
);

/** The 1 s of udelay(1) polls its_allocate_entry and its_wait_for_range_completion allow. */
const POLL_LIMIT = 1_000_000;

const SC_LOCK = 0; // raw_spin_lock_irqsave(&its->lock, flags)
const SC_LOCKED = 1; // the lock is held: allocate the command's slot
const SC_ALLOC = 2; // its_allocate_entry (its_queue_full reads GITS_CREADR), the builder, its_flush_cmd
const SC_SYNC_ALLOC = 3; // the same for the SYNC
const SC_READ_RD = 4; // rd_idx = readl_relaxed(GITS_CREADR)
const SC_POST = 5; // its_post_commands: GITS_CWRITER; unlock
const SC_WAIT = 6; // its_wait_for_range_completion: poll GITS_CREADR

export class ItsSendSingleCommand extends Frame {
  private flags = false;
  private count = POLL_LIMIT;
  private rdIdx = 0;
  private toIdx = 0;
  private linearIdx = 0;

  constructor(
    private readonly its: ItsNode,
    private readonly cmd: ItsCmdBlock,
    /** The SYNC (or VSYNC) the builder's sync object asks for, or null. */
    private readonly sync: ItsCmdBlock | null,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const its = this.its;
    const oid = its.hw.oid;
    switch (this.pc) {
      case SC_LOCK:
        this.pc = SC_LOCKED;
        return this.call(spinLockIrqsave(its.lock));
      case SC_LOCKED:
        this.flags = sent as boolean;
        this.pc = SC_ALLOC;
        return this.yield_(op(C_ITS_CMD_BUILD, oid));
      case SC_ALLOC:
        if (itsQueueFull(its)) {
          if (--this.count > 0) return this.yield_(cpuRelax(C_GITS_READ, oid));
          its.log.push("ITS queue not draining; ITS can't allocate, dropping command");
          spinUnlockIrqrestore(its.lock, this.flags);
          return this.return_(undefined);
        }
        itsQueueCommand(its, this.cmd);
        this.count = POLL_LIMIT;
        this.pc = this.sync !== null ? SC_SYNC_ALLOC : SC_READ_RD;
        return this.yield_(op(this.sync !== null ? C_ITS_CMD_BUILD : C_GITS_READ, oid));
      case SC_SYNC_ALLOC:
        if (itsQueueFull(its)) {
          if (--this.count > 0) return this.yield_(cpuRelax(C_GITS_READ, oid));
          its.log.push('ITS queue not draining'); // no SYNC: goto post
        } else itsQueueCommand(its, this.sync!);
        this.pc = SC_READ_RD;
        return this.yield_(op(C_GITS_READ, oid));
      case SC_READ_RD:
        this.rdIdx = its.hw.read(GITS_CREADR);
        this.pc = SC_POST;
        return this.yield_(op(C_GITS_WRITE, oid));
      case SC_POST: {
        const next = itsPostCommands(its);
        spinUnlockIrqrestore(its.lock, this.flags);
        // linearize to_idx if the command set has wrapped around
        this.toIdx = next < this.rdIdx ? next + ITS_CMD_QUEUE_SZ : next;
        this.linearIdx = this.rdIdx;
        this.count = POLL_LIMIT;
        this.pc = SC_WAIT;
        return this.yield_(op(C_GITS_READ, oid));
      }
      default: {
        // SC_WAIT: the read pointer's progress since the last read, wrap-around included
        const rd = its.hw.read(GITS_CREADR);
        this.linearIdx += rd < this.rdIdx ? rd - this.rdIdx + ITS_CMD_QUEUE_SZ : rd - this.rdIdx;
        this.rdIdx = rd;
        if (this.linearIdx >= this.toIdx) return this.return_(undefined);
        if (--this.count === 0) {
          its.log.push(`ITS queue timeout (${this.toIdx} ${this.linearIdx})`);
          return this.return_(undefined);
        }
        return this.yield_(cpuRelax(C_GITS_READ, oid));
      }
    }
  }

  protected override unwind(): void {
    if (this.pc >= SC_ALLOC && this.pc <= SC_POST) spinUnlockIrqrestore(this.its.lock, this.flags);
  }
}

/** its_send_single_command(its, builder, desc) with the command and its SYNC already built. */
export function itsSendSingleCommand(its: ItsNode, cmd: ItsCmdBlock, sync: ItsCmdBlock | null): Frame {
  return new ItsSendSingleCommand(its, cmd, sync);
}
