// An MSI-capable PCI function on a GICv3 host (createHost({ gic: 'v3', msiDevices })), driven through VFIO's real
// ioctls: 4 MSI vectors bound to eventfds (vfio_msi_enable → pci_alloc_irq_vectors → MAPD/MAPTI), each fired
// several times (posted write → ITS → LPI → gic_handle_irq → vfio_msihandler → eventfd_signal), then disabled
// (DISCARD, MAPD V = 0) and the process gone with nothing left behind.
import { describe, expect, it } from 'vitest';
import { ErrnoError } from '../../src/abi/errno.js';
import { EFD_NONBLOCK } from '../../src/abi/eventfd.js';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  vfioIrqSetEventfdData,
  vfioIrqSetWithData,
} from '../../src/abi/vfio.js';
import type { Process } from '../../src/host/process.js';
import { ITS_CMD_DISCARD, ITS_CMD_MAPD, ITS_CMD_MAPTI } from '../../src/hw/gicv3/its.js';
import { createHost } from '../../src/machine.js';
import { deviceInfo, irqInfo, openVfioDevice, place, readEventfd } from '../../src/scenario/vmm.js';

const NAME = '0000:01:00.0';
const DEVID = 0x0100;

function msiHost() {
  const host = createHost({
    gic: 'v3',
    cpus: 2,
    msiDevices: [{ name: NAME, iommuGroup: 12, deviceId: DEVID, vectors: 8 }],
  });
  const p = host.process();
  return { host, p, h: openVfioDevice(p, 12, NAME), hw: host.msiDevice(NAME), d: host.msiDevices[0]! };
}

function setIrqs(p: Process, device: number, index: number, flags: number, start: number, fds: number[]): number {
  const data = flags & VFIO_IRQ_SET_DATA_EVENTFD ? vfioIrqSetEventfdData(fds) : undefined;
  const bytes = vfioIrqSetWithData(
    { flags: flags | VFIO_IRQ_SET_ACTION_TRIGGER, index, start, count: fds.length },
    data,
  );
  return p.ioctl(device, VFIO_DEVICE_SET_IRQS, place(p, bytes));
}

function drain(p: Process, fd: number): bigint {
  try {
    return readEventfd(p, fd);
  } catch (e) {
    if (e instanceof ErrnoError && e.errno === 'EAGAIN') return 0n;
    throw e;
  }
}

describe('vfio-pci MSI on a GICv3 ITS host', () => {
  it('reports a PCI device with 5 IRQ indexes; MSI and MSI-X have the function vectors, EVENTFD|NORESIZE', () => {
    const { p, h } = msiHost();
    const info = deviceInfo(p, h.device);
    expect(info.flags).toBe(VFIO_DEVICE_FLAGS_PCI);
    expect(info.num_irqs).toBe(VFIO_PCI_NUM_IRQS);
    for (const index of [VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX]) {
      expect(irqInfo(p, h.device, index)).toMatchObject({
        flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
        count: 8,
      });
    }
  });

  it('4 vectors with eventfds: each fired 3 times is handled as an LPI and counted exactly once per write', () => {
    const { host, p, h, hw, d } = msiHost();
    const its = host.irq.msiDomain!.host.its;
    const efds = [0, 1, 2, 3].map(() => p.eventfd(0, EFD_NONBLOCK));
    expect(setIrqs(p, h.device, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD, 0, efds)).toBe(0);
    // what the driver issued: one MAPD, one MAPTI per vector; the ITS holds the translations
    expect([its.sent[ITS_CMD_MAPD], its.sent[ITS_CMD_MAPTI]]).toEqual([1, 4]);
    const descs = d.vdev.vectors!.descs;
    for (let k = 0; k < 4; k++) {
      expect(host.irq.gic.its!.mapping(DEVID, k)?.lpi).toBe(descs[k]!.hwirq);
      expect(descs[k]!.action!.name).toBe(`vfio-msi[${k}](${NAME})`);
    }
    // one irq_bypass producer per vector: token the trigger eventfd, irq the vector's Linux IRQ
    const producers = host.kernel.irqBypass.producers;
    expect(producers.map((x) => x.irq).sort()).toEqual(descs.map((x) => x.irq).sort());
    expect(producers.every((x) => x.token === d.vdev.ctx.find((c) => c.producer === x)?.trigger)).toBe(true);
    for (let round = 0; round < 3; round++) {
      for (let k = 0; k < 4; k++) hw.fire(k);
      host.settle();
    }
    expect(efds.map((fd) => drain(p, fd))).toEqual([3n, 3n, 3n, 3n]);
    expect(descs.map((x) => x.count)).toEqual([3, 3, 3, 3]);
    // its_select_cpu spread the LPIs: vectors 0 and 2 on CPU 0, 1 and 3 on CPU 1
    expect(descs.map((x) => x.kstat[x.hwirq % 2])).toEqual([3, 3, 3, 3]);
    expect(Array.from(hw.sent.subarray(0, 4))).toEqual([3, 3, 3, 3]);
    expect(host.irq.genirq.badIrqs).toEqual([]);
    expect(host.checkInvariants()).toEqual([]);

    // DATA_NONE, count 0: vfio_msi_disable — free_irq (DISCARD) per vector, then MAPD V=0
    expect(setIrqs(p, h.device, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE, 0, [])).toBe(0);
    expect(its.sent[ITS_CMD_DISCARD]).toBe(4);
    expect(its.sent[ITS_CMD_MAPD]).toBe(2);
    for (let k = 0; k < 4; k++) expect(host.irq.gic.its!.mapping(DEVID, k)).toBeNull();
    expect(its.devices).toEqual([]);
    expect(host.kernel.irqBypass.producers).toEqual([]);
    expect(descs.every((x) => host.irq.genirq.domain.irqToDesc(x.irq) === undefined)).toBe(true);
    hw.fire(0); // the function is disabled: nothing reaches the ITS
    host.settle();
    expect(drain(p, efds[0]!)).toBe(0n);
    expect(host.irq.gic.its!.commandErrors).toBe(0);
    p.exit();
    host.settle();
    expect(host.checkInvariants({ teardown: true })).toEqual([]);
    expect(host.irq.msiDomain!.host.lpiRanges.freeCount).toBe(1024);
  });

  it('closing the device with MSI-X vectors bound disables them (vfio_pci_core_disable) and releases the eventfds', () => {
    const { host, p, h, hw } = msiHost();
    const its = host.irq.msiDomain!.host.its;
    const efds = [p.eventfd(0, EFD_NONBLOCK), p.eventfd(0, EFD_NONBLOCK)];
    setIrqs(p, h.device, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD, 0, efds);
    hw.fire(1);
    host.settle();
    expect(drain(p, efds[1]!)).toBe(1n);
    p.exit();
    host.settle();
    expect(its.devices).toEqual([]);
    expect(its.sent[ITS_CMD_DISCARD]).toBe(2);
    expect(host.checkInvariants({ teardown: true })).toEqual([]);
  });
});
