/**
 * its_irq_set_vcpu_affinity's GICv4 half (drivers/irqchip/irq-gic-v3-its.c, Linux 6.1), hooked into the ITS-MSI chip
 * (itsIrqChip.ts `vcpuAffinity`): under the device's event_map.vlpi_lock it turns an MSI's LPI into a vLPI of a vPE
 * and back — its_vlpi_map (the VCONF byte through lpi_write_config, DISCARD, VMAPTI; VMOVI when already forwarded),
 * its_vlpi_unmap (DISCARD, MAPTI back to the LPI, lpi_update_config's prop byte + INV), its_vlpi_prop_update (the
 * VCONF byte, INV when asked, its_vlpi_set_doorbell's VMOVI when the enable bit flips) and its_vlpi_get. The
 * bookkeeping is done first and the hardware actions then run in the kernel's order, all under the lock.
 *
 * The chip's other callbacks on a forwarded IRQ come here too: mask/unmask (maskVlpi: the VCONF byte and a VINV, not
 * the host's property table) and irq_set_irqchip_state (setVlpiPending: VINT / VCLEAR).
 *
 * Left out: IRQ_DISABLE_UNLAZY (irq-gic-v4.c its_map_vlpi sets it: the model's lazy disable never runs for a
 * forwarded LPI, whose flow no longer does).
 */
import { ITS_CMD_CLEAR, ITS_CMD_DISCARD, ITS_CMD_INT, ITS_CMD_INV } from '../../../hw/gicv3/its.js';
import { ITS_CMD_VSYNC } from '../../../hw/gicv3/itsVirtual.js';
import { LPI_BASE } from '../../../hw/gicv3/lpi.js';
import type { Engine } from '../../../sim/engine.js';
import { type Boundary, Frame } from '../../../sim/frame.js';
import { Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../../../sim/locks.js';
import { op } from '../../../sim/task.js';
import type { IrqDesc } from '../irqDesc.js';
import { type ItsCmdBlock, itsBuildEventCmd, itsBuildMaptiCmd, itsBuildSyncCmd } from './itsCmd.js';
import { itsSendSingleCommand } from './itsCmdQueue.js';
import type { ItsDevice } from './itsDevice.js';
import { type HostIts, LPI_PROP_DEFAULT_PRIO, LPI_PROP_ENABLED, LPI_PROP_GROUP1 } from './itsInit.js';
import { C_LPI_CONFIG_WRITE, type ItsVcpuAffinity, itsGetEventId, itsIrqData } from './itsIrqChip.js';
import { itsBuildVmaptiCmd, itsBuildVmoviCmd, itsBuildVpeCmd } from './itsVCmd.js';
import type { ItsVm, ItsVpe } from './itsVpe.js';

/** struct its_vlpi_map (arm-gic-v4.h). */
export interface ItsVlpiMap {
  vm: ItsVm;
  vpe: ItsVpe;
  vintid: number;
  properties: number;
  dbEnabled: boolean;
}

/** struct its_cmd_info for an LPI; a null info is the unmap request. */
export type LpiCmdInfo =
  | { cmdType: 'MAP_VLPI'; map: ItsVlpiMap }
  | { cmdType: 'GET_VLPI'; map: ItsVlpiMap | null }
  | { cmdType: 'PROP_UPDATE_VLPI' | 'PROP_UPDATE_AND_INV_VLPI'; config: number };

/** The GICv4 fields of struct event_lpi_map: vm, vlpi_maps, nr_vlpis, vlpi_lock. */
class EventMapV4 {
  vm: ItsVm | null = null;
  readonly vlpiMaps: (ItsVlpiMap | null)[];
  nrVlpis = 0;
  readonly vlpiLock: Spinlock;

  constructor(engine: Engine, nrLpis: number) {
    this.vlpiMaps = new Array<ItsVlpiMap | null>(nrLpis).fill(null);
    this.vlpiLock = new Spinlock(engine, 'its_dev.event_map.vlpi_lock');
  }
}

/** One hardware action: a command with its SYNC/VSYNC, or a configuration byte written at `pa`. */
type ItsAction = { cmd: ItsCmdBlock; sync: ItsCmdBlock | null } | { pa: number; clr: number; set: number };

export class ItsVlpi implements ItsVcpuAffinity {
  private readonly eventMaps = new Map<ItsDevice, EventMapV4>();

  constructor(
    readonly host: HostIts,
    private readonly engine: Engine,
  ) {}

  eventMap(dev: ItsDevice): EventMapV4 {
    let m = this.eventMaps.get(dev);
    if (m === undefined) {
      m = new EventMapV4(this.engine, dev.nrLpis);
      this.eventMaps.set(dev, m);
    }
    return m;
  }

  /** its_irq_set_vcpu_affinity on a GICv4 ITS; an info that is not a command (a bare vCPU) is -EINVAL. */
  irqSetVcpuAffinity(d: IrqDesc, info: unknown): boolean | Frame<boolean> {
    if (info !== null && (typeof info !== 'object' || !('cmdType' in info))) return false;
    return new ItsIrqSetVcpuAffinity(this, d, info as LpiCmdInfo | null);
  }

  /** get_vlpi_map. */
  vlpiMap(d: IrqDesc): ItsVlpiMap | null {
    if (!d.forwardedToVcpu) return null;
    return this.eventMap(itsIrqData(d).dev).vlpiMaps[itsGetEventId(d)] ?? null;
  }

  /** lpi_write_config (+ lpi_update_config's INV, or VINV when forwarded, with `inv`). */
  updateConfig(d: IrqDesc, clr: number, set: number, inv: boolean): ItsAction[] {
    const map = this.vlpiMap(d);
    if (map !== null) map.properties = (map.properties & ~clr) | set | LPI_PROP_GROUP1;
    const pa = map === null ? this.host.propTable + d.hwirq - LPI_BASE : map.vm.vpropAddr + map.vintid - LPI_BASE;
    const out: ItsAction[] = [{ pa, clr, set: set | LPI_PROP_GROUP1 }];
    if (inv) out.push(this.eventCmd(d, ITS_CMD_INV));
    return out;
  }

  /**
   * its_mask_irq / its_unmask_irq of a forwarded IRQ: its_vlpi_set_doorbell (a VMOVI to the same vPE when db_enabled
   * changes), then lpi_update_config — lpi_write_config on the VM's VCONF byte (and the map's properties), its_send_vinv.
   */
  maskVlpi(d: IrqDesc, enable: boolean): Frame {
    const out = this.setDoorbell(d, enable);
    out.push(...this.updateConfig(d, enable ? 0 : LPI_PROP_ENABLED, enable ? LPI_PROP_ENABLED : 0, true));
    return new ItsActions(this.host, out);
  }

  /** its_irq_set_irqchip_state of a forwarded IRQ: its_send_vint / its_send_vclear (INT / CLEAR with the vPE's VSYNC). */
  setVlpiPending(d: IrqDesc, pending: boolean): Frame {
    return new ItsActions(this.host, [this.eventCmd(d, pending ? ITS_CMD_INT : ITS_CMD_CLEAR)]);
  }

  /** its_vlpi_set_doorbell: nothing, or the VMOVI to the same vPE that sets the doorbell (1023 on 4.1). */
  setDoorbell(d: IrqDesc, enable: boolean): ItsAction[] {
    const map = this.vlpiMap(d);
    if (map === null || map.dbEnabled === enable) return [];
    map.dbEnabled = enable;
    const { dev } = itsIrqData(d);
    const vpeId = map.vpe.vpeId;
    return [
      { cmd: itsBuildVmoviCmd(dev.deviceId, itsGetEventId(d), vpeId), sync: itsBuildVpeCmd(ITS_CMD_VSYNC, vpeId) },
    ];
  }

  /** A command on the IRQ's event with the SYNC its builder asks for: its collection's, or the vPE's when forwarded. */
  eventCmd(
    d: IrqDesc,
    nr: typeof ITS_CMD_INV | typeof ITS_CMD_DISCARD | typeof ITS_CMD_INT | typeof ITS_CMD_CLEAR,
  ): ItsAction {
    const { dev } = itsIrqData(d);
    const ev = itsGetEventId(d);
    const map = this.vlpiMap(d);
    const sync =
      map === null
        ? itsBuildSyncCmd(dev.its.collections[dev.colMap[ev]!]!.targetAddress)
        : itsBuildVpeCmd(ITS_CMD_VSYNC, map.vpe.vpeId);
    return { cmd: itsBuildEventCmd(nr, dev.deviceId, ev), sync };
  }
}

/** Runs the actions in order, each a step (a configuration byte) or a command (its_send_single_command). */
class ItsActions extends Frame {
  private i = 0;

  constructor(
    private readonly host: HostIts,
    private readonly actions: ItsAction[],
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 1) {
      const a = this.actions[this.i - 1] as { pa: number; clr: number; set: number };
      const mem = this.host.pages.memory;
      mem.writeU8(a.pa, ((mem.readU8(a.pa) & ~a.clr) | a.set) & 0xff);
    }
    if (this.i === this.actions.length) return this.return_(undefined);
    const a = this.actions[this.i++]!;
    if ('pa' in a) {
      this.pc = 1;
      return this.yield_(op(C_LPI_CONFIG_WRITE));
    }
    this.pc = 0;
    return this.call(itsSendSingleCommand(this.host.its, a.cmd, a.sync));
  }
}

/** its_irq_set_vcpu_affinity under event_map.vlpi_lock. */
class ItsIrqSetVcpuAffinity extends Frame<boolean> {
  private saved = false;
  private ok = false;

  constructor(
    private readonly v: ItsVlpi,
    private readonly d: IrqDesc,
    private readonly info: LpiCmdInfo | null,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const em = this.v.eventMap(itsIrqData(this.d).dev);
    switch (this.pc) {
      case 0:
        this.pc = 1;
        return this.call(spinLockIrqsave(em.vlpiLock));
      case 1: {
        this.saved = sent as boolean;
        const actions = this.decide(em);
        this.ok = actions !== null;
        this.pc = 2;
        return this.call(new ItsActions(this.v.host, actions ?? []));
      }
      default:
        this.pc = 3;
        spinUnlockIrqrestore(em.vlpiLock, this.saved);
        return this.return_(this.ok);
    }
  }

  protected override unwind(): void {
    if (this.pc === 2) spinUnlockIrqrestore(this.v.eventMap(itsIrqData(this.d).dev).vlpiLock, this.saved);
  }

  /** The request's bookkeeping and its hardware actions, or null for -EINVAL. */
  private decide(em: EventMapV4): ItsAction[] | null {
    const d = this.d;
    const v = this.v;
    const info = this.info;
    const { dev } = itsIrqData(d);
    const ev = itsGetEventId(d);
    const physSync = () => itsBuildSyncCmd(dev.its.collections[dev.colMap[ev]!]!.targetAddress);
    if (info === null) {
      // its_vlpi_unmap
      if (em.vm === null || !d.forwardedToVcpu) return null;
      const out: ItsAction[] = [{ cmd: itsBuildEventCmd(ITS_CMD_DISCARD, dev.deviceId, ev), sync: physSync() }];
      d.forwardedToVcpu = false;
      em.vlpiMaps[ev] = null;
      const col = dev.its.collections[dev.colMap[ev]!]!;
      out.push({ cmd: itsBuildMaptiCmd(dev.deviceId, ev, d.hwirq, col.colId), sync: physSync() });
      out.push(...v.updateConfig(d, 0xff, LPI_PROP_DEFAULT_PRIO | LPI_PROP_ENABLED | LPI_PROP_GROUP1, true));
      if (--em.nrVlpis === 0) em.vm = null;
      return out;
    }
    if (info.cmdType === 'MAP_VLPI') {
      // its_vlpi_map
      if (em.vm === null) em.vm = info.map.vm;
      else if (em.vm !== info.map.vm) return null;
      const vpeId = info.map.vpe.vpeId;
      em.vlpiMaps[ev] = { ...info.map };
      if (d.forwardedToVcpu) {
        return [{ cmd: itsBuildVmoviCmd(dev.deviceId, ev, vpeId), sync: itsBuildVpeCmd(ITS_CMD_VSYNC, vpeId) }];
      }
      d.forwardedToVcpu = true;
      em.nrVlpis++;
      return [
        ...v.updateConfig(d, 0xff, info.map.properties, false),
        { cmd: itsBuildEventCmd(ITS_CMD_DISCARD, dev.deviceId, ev), sync: physSync() },
        {
          cmd: itsBuildVmaptiCmd(dev.deviceId, ev, vpeId, info.map.vintid),
          sync: itsBuildVpeCmd(ITS_CMD_VSYNC, vpeId),
        },
      ];
    }
    const map = v.vlpiMap(d);
    if (em.vm === null || map === null) return null;
    if (info.cmdType === 'GET_VLPI') {
      info.map = { ...map };
      return [];
    }
    // its_vlpi_prop_update, then its_vlpi_set_doorbell: a VMOVI to the same vPE when the enable bit flips
    const out = v.updateConfig(d, 0xff, info.config, info.cmdType === 'PROP_UPDATE_AND_INV_VLPI');
    out.push(...v.setDoorbell(d, (info.config & LPI_PROP_ENABLED) !== 0));
    return out;
  }
}
