/**
 * vfio-pci's IRQ ioctls on an MSI-capable function (drivers/vfio/pci/vfio_pci_core.c, vfio_pci_intrs.c, Linux 6.1):
 * the info queries and every errno path of VFIO_DEVICE_SET_IRQS on the MSI, MSI-X, INTx and REQ indexes, each named
 * after the kernel function that returns it, and what a failure leaves behind (nothing).
 */
import { describe, expect, it } from 'vitest';
import { ErrnoError, errnoOf } from '../../abi/errno.js';
import { EFD_NONBLOCK } from '../../abi/eventfd.js';
import {
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_REQ_IRQ_INDEX,
  vfioIrqSetBoolData,
  vfioIrqSetEventfdData,
  vfioIrqSetWithData,
  vfioRegionInfo,
} from '../../abi/vfio.js';
import type { Process } from '../../host/process.js';
import { createHost } from '../../machine.js';
import { irqInfo, openVfioDevice, place, readEventfd } from '../../scenario/vmm.js';

const NAME = '0000:02:00.0';

function setup() {
  const host = createHost({ gic: 'v3', msiDevices: [{ name: NAME, iommuGroup: 3, deviceId: 9, vectors: 4 }] });
  const p = host.process();
  const h = openVfioDevice(p, 3, NAME);
  const d = host.msiDevices[0]!;
  const set = (index: number, flags: number, start: number, count: number, data?: Uint8Array) =>
    p.ioctl(h.device, VFIO_DEVICE_SET_IRQS, place(p, vfioIrqSetWithData({ flags, index, start, count }, data)));
  const trigger = (index: number, start: number, fds: number[]) =>
    set(index, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, start, fds.length, vfioIrqSetEventfdData(fds));
  const efd = () => p.eventfd(0, EFD_NONBLOCK);
  return { host, p, h, d, set, trigger, efd };
}

function count(p: Process, fd: number): bigint {
  try {
    return readEventfd(p, fd);
  } catch (e) {
    if (e instanceof ErrnoError && e.errno === 'EAGAIN') return 0n;
    throw e;
  }
}

describe('VFIO_DEVICE_GET_IRQ_INFO (vfio_pci_ioctl_get_irq_info)', () => {
  it('INTx: no pin, count 0, MASKABLE|AUTOMASKED; REQ: count 1; ERR on a conventional PCI function and index 5: EINVAL', () => {
    const { p, h } = setup();
    expect(irqInfo(p, h.device, VFIO_PCI_INTX_IRQ_INDEX)).toMatchObject({
      flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
      count: 0,
    });
    expect(irqInfo(p, h.device, VFIO_PCI_REQ_IRQ_INDEX).count).toBe(1);
    expect(errnoOf(() => irqInfo(p, h.device, VFIO_PCI_ERR_IRQ_INDEX))).toBe('EINVAL');
    expect(errnoOf(() => irqInfo(p, h.device, VFIO_PCI_NUM_IRQS))).toBe('EINVAL');
  });
});

describe('VFIO_DEVICE_SET_IRQS on vfio-pci', () => {
  it('vfio_set_irqs_validate_and_prepare: INTx (count 0) and vectors past the function: EINVAL', () => {
    const { set, trigger, efd } = setup();
    expect(errnoOf(() => trigger(VFIO_PCI_INTX_IRQ_INDEX, 0, [efd()]))).toBe('EINVAL');
    expect(errnoOf(() => trigger(VFIO_PCI_MSI_IRQ_INDEX, 2, [efd(), efd(), efd()]))).toBe('EINVAL');
    expect(errnoOf(() => set(VFIO_PCI_ERR_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1))).toBe(
      'EINVAL',
    );
  });

  it('vfio_pci_set_irqs_ioctl: MASK of an MSI index is ENOTTY ("Need masking support exported")', () => {
    const { set } = setup();
    expect(errnoOf(() => set(VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, 0, 1))).toBe(
      'ENOTTY',
    );
  });

  it('vfio_pci_set_msi_trigger: MSI-X while MSI is enabled, and signalling an index not enabled: EINVAL', () => {
    const { set, trigger, efd } = setup();
    expect(errnoOf(() => set(VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1))).toBe(
      'EINVAL',
    );
    trigger(VFIO_PCI_MSI_IRQ_INDEX, 0, [efd()]);
    expect(errnoOf(() => trigger(VFIO_PCI_MSIX_IRQ_INDEX, 0, [efd()]))).toBe('EINVAL');
  });

  it('vfio_msi_enable for no vector (DATA_EVENTFD, start 0, count 0): pci_alloc_irq_vectors(pdev, 1, 0) is ERANGE', () => {
    const { set, d, trigger, efd } = setup();
    // found by the MSI fuzzer: the model went on to its_msi_prepare and failed EINVAL there
    expect(errnoOf(() => trigger(VFIO_PCI_MSIX_IRQ_INDEX, 0, []))).toBe('ERANGE');
    expect(d.hw.enabled).toBe(false);
    // with start 1 one vector is enabled, then vfio_msi_set_block(1, 0) is EINVAL (start ≥ num_ctx) and it is disabled
    expect(
      errnoOf(() => set(VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 1, 0)),
    ).toBe('EINVAL');
    expect(d.hw.enabled).toBe(false);
    trigger(VFIO_PCI_MSI_IRQ_INDEX, 0, [efd()]);
    expect(d.hw.enabled).toBe(true);
  });

  it('vfio_msi_set_block: vectors beyond those enabled (start + count > num_ctx): EINVAL', () => {
    const { trigger, efd } = setup();
    trigger(VFIO_PCI_MSI_IRQ_INDEX, 0, [efd(), efd()]);
    expect(errnoOf(() => trigger(VFIO_PCI_MSI_IRQ_INDEX, 2, [efd()]))).toBe('EINVAL');
  });

  it('vfio_msi_set_vector_signal: a bad fd is EBADF; set_block unwinds and the fresh index is disabled again', () => {
    const { host, trigger, efd, d } = setup();
    const its = host.irq.msiDomain!.host.its;
    expect(errnoOf(() => trigger(VFIO_PCI_MSI_IRQ_INDEX, 0, [efd(), 99]))).toBe('EBADF');
    expect(d.vdev.irqType).toBeNull();
    expect(its.devices).toEqual([]);
    expect(host.kernel.irqBypass.producers).toEqual([]);
    expect(host.checkInvariants()).toEqual([]);
  });

  it('rebinding, unbinding (fd -1) and loopback (DATA_NONE, DATA_BOOL) on an enabled index', () => {
    const { p, d, set, trigger, efd } = setup();
    const [a, b, c] = [efd(), efd(), efd()];
    trigger(VFIO_PCI_MSIX_IRQ_INDEX, 0, [a, b]);
    trigger(VFIO_PCI_MSIX_IRQ_INDEX, 1, [c]); // vector 1 moves from b to c
    set(VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 2);
    set(
      VFIO_PCI_MSIX_IRQ_INDEX,
      VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER,
      0,
      2,
      vfioIrqSetBoolData([false, true]),
    );
    expect([count(p, a), count(p, b), count(p, c)]).toEqual([1n, 0n, 2n]);
    trigger(VFIO_PCI_MSIX_IRQ_INDEX, 0, [-1]);
    expect(d.vdev.ctx[0]!.trigger).toBeNull();
    expect(d.vdev.vectors!.descs[0]!.action).toBeNull();
  });

  it('a second producer with the same eventfd fails to register (EBUSY, logged): the vector still signals it', () => {
    const { host, p, d, trigger, efd } = setup();
    const a = efd();
    trigger(VFIO_PCI_MSI_IRQ_INDEX, 0, [a, a]);
    expect(d.vdev.ctx.map((c) => c.producer!.token !== null)).toEqual([true, false]);
    expect(host.kernel.irqBypass.producers.length).toBe(1);
    d.hw.fire(1);
    host.settle();
    expect(count(p, a)).toBe(1n);
  });

  it('REQ: DATA_NONE without an eventfd is EINVAL (vfio_pci_set_ctx_trigger_single); once set it loops back', () => {
    const { p, set, efd } = setup();
    const none = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    expect(errnoOf(() => set(VFIO_PCI_REQ_IRQ_INDEX, none, 0, 1))).toBe('EINVAL');
    const r = efd();
    set(
      VFIO_PCI_REQ_IRQ_INDEX,
      VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
      0,
      1,
      vfioIrqSetEventfdData([r]),
    );
    set(VFIO_PCI_REQ_IRQ_INDEX, none, 0, 1);
    expect(count(p, r)).toBe(1n);
  });

  it('VFIO_DEVICE_RESET without a reset method: EINVAL; regions are not modelled: ENOTTY', () => {
    const { p, h } = setup();
    expect(errnoOf(() => p.ioctl(h.device, VFIO_DEVICE_RESET, 0))).toBe('EINVAL');
    const info = place(
      p,
      vfioRegionInfo.encode({ argsz: 32, flags: 0, index: 0, cap_offset: 0, size: 0n, offset: 0n }),
    );
    expect(errnoOf(() => p.ioctl(h.device, VFIO_DEVICE_GET_REGION_INFO, info))).toBe('ENOTTY');
  });
});
