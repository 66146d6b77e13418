/**
 * The GICv3 ITS and GICv4.1 tracepoints of a traced machine (docs/TRACING.md): its_cmd and its_translate on the CPU that
 * wrote the ITS, gic_vpendbaser / gic_vpe_doorbell / gic_vlpi_iar on the PE of the redistributor that acted. The
 * hardware knows vPEIDs only: each event also names the vCPU whose vPE that is (KVM's its_vm, vpes[vcpu] — vgicV4.ts
 * vgicV4Vpe), -1 when no VM owns it.
 */

import type { Gicv3TraceHooks } from '../hw/gicv3/gicv3Trace.js';
import type { IttEntry } from '../hw/gicv3/itsVirtual.js';
import type { Gicv3Vlpis } from '../hw/gicv3/redistributorVpe.js';
import type { Host } from '../machine.js';
import { currentOrNull, type Task } from '../sim/task.js';
import {
  EV_GIC_VLPI_IAR,
  EV_GIC_VPE_DOORBELL,
  EV_GIC_VPENDBASER,
  EV_ITS_CMD,
  EV_ITS_TRANSLATE,
  ITS_XLATE_DROPPED,
  ITS_XLATE_LPI,
  ITS_XLATE_VLPI,
  ITS_XLATE_VPT,
} from '../trace/events.js';
import type { Tracer } from '../trace/tracer.js';

const SPURIOUS = 1023;
/** ITS command fields (ARM IHI 0069 §5.3): DeviceID is DW0[63:32], EventID DW1[31:0], vPEID DW1[47:32]. */
const CMDS_WITH_DEVICE = new Set([0x01, 0x03, 0x04, 0x08, 0x0a, 0x0b, 0x0c, 0x0f, 0x21, 0x2a, 0x2b]);
const CMDS_WITH_EVENT = new Set([0x01, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0f, 0x21, 0x2a, 0x2b]);
const CMD_MAPTI = 0x0a;
const CMD_MAPI = 0x0b;
const CMD_VMAPTI = 0x2a;
const CMD_VMAPI = 0x2b;
const VIRTUAL_CMDS = new Set([0x21, 0x22, 0x25, 0x29, 0x2a, 0x2b, 0x2d, 0x2e]);

export class Gicv4Trace implements Gicv3TraceHooks {
  constructor(
    private readonly tr: Tracer,
    private readonly host: Host,
    private readonly vlpis: Gicv3Vlpis | null,
    /** The trace pid of `task` on `cpu`, with the CPU's latency flags set (HostTrace.ctx). */
    private readonly ctx: (cpu: number, task: Task | null) => number,
  ) {}

  itsCommand(c: Uint32Array, ok: boolean): void {
    const cmd = c[0]! & 0xff;
    const devid = CMDS_WITH_DEVICE.has(cmd) ? c[1]! : 0;
    const eventid = CMDS_WITH_EVENT.has(cmd) ? c[2]! : 0;
    // the INTID the command maps: MAPTI's pINTID DW1[63:32], VMAPTI's vINTID DW2[31:0], the EventID itself for MAP(V)I
    const intid =
      cmd === CMD_MAPTI ? c[3]! : cmd === CMD_VMAPTI ? c[4]! : cmd === CMD_MAPI || cmd === CMD_VMAPI ? c[2]! : 0;
    const vpeid = VIRTUAL_CMDS.has(cmd) ? c[3]! & 0xffff : -1;
    const cpu = cpuNow();
    this.tr.emit(EV_ITS_CMD, cpu, this.ctx(cpu, currentOrNull()), cmd, devid, eventid, intid, vpeid, ok ? 1 : 0);
  }

  itsTranslate(deviceId: number, eventId: number, e: IttEntry | null, pe: number): void {
    let result = ITS_XLATE_DROPPED;
    let intid = SPURIOUS;
    let vpeid = -1;
    let target = -1;
    if (e !== null && e.vpeid >= 0) {
      const vpe = this.vlpis?.table.get(e.vpeid) ?? null;
      if (vpe !== null && this.vlpis!.table.inRange(vpe, e.lpi)) {
        vpeid = e.vpeid;
        intid = e.lpi;
        target = vpe.rd;
        result = this.vlpis!.residentVpe(vpe.rd) === vpeid ? ITS_XLATE_VLPI : ITS_XLATE_VPT;
      }
    } else if (e !== null && pe >= 0) {
      intid = e.lpi;
      target = pe;
      result = ITS_XLATE_LPI;
    }
    const cpu = cpuNow();
    const vcpu = this.vcpuOf(vpeid);
    this.tr.emit(
      EV_ITS_TRANSLATE,
      cpu,
      this.ctx(cpu, currentOrNull()),
      deviceId,
      eventId,
      intid,
      vpeid,
      vcpu,
      target,
      result,
    );
  }

  vpendbaser(pe: number, vpeid: number, valid: boolean, doorbell: boolean, pendingLast: boolean): void {
    const v = this.vcpuOf(vpeid);
    this.tr.emit(
      EV_GIC_VPENDBASER,
      pe,
      this.on(pe),
      pe,
      vpeid,
      v,
      valid ? 1 : 0,
      doorbell ? 1 : 0,
      pendingLast ? 1 : 0,
    );
  }

  vpeDoorbell(pe: number, vpeid: number, intid: number, vintid: number): void {
    this.tr.emit(EV_GIC_VPE_DOORBELL, pe, this.on(pe), pe, vpeid, this.vcpuOf(vpeid), intid, vintid);
  }

  vlpiAcknowledge(pe: number, vpeid: number, vintid: number): void {
    this.tr.emit(EV_GIC_VLPI_IAR, pe, this.on(pe), pe, vpeid, this.vcpuOf(vpeid), vintid);
  }

  /** The context of a redistributor's event on `pe`: the task running there (the writer's own, when it is on `pe`). */
  private on(pe: number): number {
    const t = currentOrNull();
    return this.ctx(pe, t !== null && t.cpu === pe ? t : (this.host.engine.cpus[pe]?.current ?? null));
  }

  /** The index of the vCPU whose vPE is `vpeid` (vgic_v4_init gave vCPU i vpes[i]), or -1. */
  private vcpuOf(vpeid: number): number {
    if (vpeid < 0) return -1;
    const vms = this.host.kvm.vms;
    for (let m = 0; m < vms.length; m++) {
      const vpes = vms[m]!.vgic?.itsVm?.vpes;
      if (vpes === undefined) continue;
      for (let i = 0; i < vpes.length; i++) if (vpes[i]!.vpeId === vpeid) return i;
    }
    return -1;
  }
}

function cpuNow(): number {
  return currentOrNull()?.cpu ?? 0;
}
