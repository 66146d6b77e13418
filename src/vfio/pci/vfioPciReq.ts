/**
 * vfio_pci_set_req_trigger → vfio_pci_set_ctx_trigger_single (drivers/vfio/pci/vfio_pci_intrs.c, Linux 6.1): the
 * REQ index's one eventfd, which vfio-pci signals to ask user space to release the device. Nothing in the model
 * asks for the device back, so the eventfd is only ever signalled by the loopback (DATA_NONE / DATA_BOOL).
 */
import { errno } from '../../abi/errno.js';
import { VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE } from '../../abi/vfio.js';
import { eventfdCtxFdget, eventfdCtxPut, eventfdSignal } from '../../host/eventfd.js';
import type { Frame } from '../../sim/frame.js';
import type { VfioPciDevice } from './vfioPci.js';

/** What to run (an eventfd_signal), or null; throws the kernel's errno. */
export function vfioPciSetReqTrigger(
  vdev: VfioPciDevice,
  start: number,
  count: number,
  flags: number,
  data: Uint8Array,
): Frame | null {
  if (start !== 0 || count > 1) throw errno('EINVAL', `REQ index: start ${start} count ${count} (one eventfd only)`);
  const ctx = vdev.reqTrigger;
  if ((flags & VFIO_IRQ_SET_DATA_NONE) !== 0) {
    if (ctx === null) throw errno('EINVAL', 'REQ index: DATA_NONE with no eventfd set');
    if (count !== 0) return eventfdSignal(ctx);
    eventfdCtxPut(ctx);
    vdev.reqTrigger = null;
    return null;
  }
  if (count === 0) throw errno('EINVAL', 'REQ index: DATA_BOOL/DATA_EVENTFD need count 1');
  if ((flags & VFIO_IRQ_SET_DATA_BOOL) !== 0) return data[0] !== 0 && ctx !== null ? eventfdSignal(ctx) : null;
  if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) === 0) throw errno('EINVAL', 'REQ index: no data type');
  const fd = new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true);
  if (fd === -1) {
    if (ctx !== null) eventfdCtxPut(ctx);
    vdev.reqTrigger = null;
  } else if (fd >= 0) {
    const next = eventfdCtxFdget(vdev.kernel.currentUser().files, fd);
    if (ctx !== null) eventfdCtxPut(ctx);
    vdev.reqTrigger = next;
  }
  return null;
}
