/**
 * The its_send_* helpers of irq-gic-v3-its.c: each builds one command for an its_device or collection and posts it
 * with its_send_single_command, followed by a SYNC on the collection the builder returns (dev_event_to_col: the
 * event's collection *before* a MOVI updates col_map) — MAPD and INVALL ask for none.
 */
import { ITS_CMD_CLEAR, ITS_CMD_DISCARD, ITS_CMD_INT, ITS_CMD_INV } from '../../../hw/gicv3/its.js';
import type { Frame } from '../../../sim/frame.js';
import {
  itsBuildEventCmd,
  itsBuildInvallCmd,
  itsBuildMapcCmd,
  itsBuildMapdCmd,
  itsBuildMaptiCmd,
  itsBuildMoviCmd,
  itsBuildSyncCmd,
} from './itsCmd.js';
import { itsSendSingleCommand } from './itsCmdQueue.js';
import type { ItsDevice } from './itsDevice.js';
import type { ItsCollection, ItsNode } from './itsNode.js';

/** dev_event_to_col → its_build_sync_cmd: the SYNC on the event's current collection. */
function syncOnEvent(dev: ItsDevice, eventId: number) {
  return itsBuildSyncCmd(dev.its.collections[dev.colMap[eventId]!]!.targetAddress);
}

/** its_send_mapd: MAPD of the device's ITT (valid) or its unmapping. */
export function itsSendMapd(dev: ItsDevice, valid: boolean): Frame {
  return itsSendSingleCommand(dev.its, itsBuildMapdCmd(dev.deviceId, dev.nrItes, dev.itt, valid), null);
}

/** its_send_mapc + SYNC on the collection. */
export function itsSendMapc(its: ItsNode, col: ItsCollection, valid: boolean): Frame {
  return itsSendSingleCommand(
    its,
    itsBuildMapcCmd(col.colId, col.targetAddress, valid),
    itsBuildSyncCmd(col.targetAddress),
  );
}

/** its_send_mapti: the device's event `eventId` → LPI `physId` on the event's collection (col_map). */
export function itsSendMapti(dev: ItsDevice, physId: number, eventId: number): Frame {
  const col = dev.its.collections[dev.colMap[eventId]!]!;
  return itsSendSingleCommand(
    dev.its,
    itsBuildMaptiCmd(dev.deviceId, eventId, physId, col.colId),
    syncOnEvent(dev, eventId),
  );
}

/** its_send_movi: the event to collection `col`; the SYNC targets the old one (col_map is updated afterwards). */
export function itsSendMovi(dev: ItsDevice, col: ItsCollection, eventId: number): Frame {
  return itsSendSingleCommand(dev.its, itsBuildMoviCmd(dev.deviceId, eventId, col.colId), syncOnEvent(dev, eventId));
}

/** its_send_discard, its_send_inv, its_send_int, its_send_clear. */
export function itsSendEvent(
  nr: typeof ITS_CMD_DISCARD | typeof ITS_CMD_INV | typeof ITS_CMD_INT | typeof ITS_CMD_CLEAR,
  dev: ItsDevice,
  eventId: number,
): Frame {
  return itsSendSingleCommand(dev.its, itsBuildEventCmd(nr, dev.deviceId, eventId), syncOnEvent(dev, eventId));
}

export const itsSendDiscard = (dev: ItsDevice, eventId: number): Frame => itsSendEvent(ITS_CMD_DISCARD, dev, eventId);
export const itsSendInv = (dev: ItsDevice, eventId: number): Frame => itsSendEvent(ITS_CMD_INV, dev, eventId);
export const itsSendInt = (dev: ItsDevice, eventId: number): Frame => itsSendEvent(ITS_CMD_INT, dev, eventId);
export const itsSendClear = (dev: ItsDevice, eventId: number): Frame => itsSendEvent(ITS_CMD_CLEAR, dev, eventId);

/** its_send_invall (no SYNC). */
export function itsSendInvall(its: ItsNode, col: ItsCollection): Frame {
  return itsSendSingleCommand(its, itsBuildInvallCmd(col.colId), null);
}
