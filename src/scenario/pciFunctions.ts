/**
 * Where a scenario's PCI functions (`bus: pci`) sit, on the host and in their guest: the requester ID their MSI writes
 * carry on the host (the host ITS DeviceID), the guest's view of the function on QEMU virt's PCIe root bus (slot 0 is
 * the host bridge, so the i-th function is 00:(i + 1).0, requester ID (i + 1) << 3 — the DeviceID of its MSI routes,
 * KVM_MSI_VALID_DEVID, as virt's identity msi-map gives it), and the LPIs the guest's ITS driver maps its vectors to.
 */
import { LPI_BASE } from '../hw/gicv3/lpi.js';
import type { Mode, Scenario } from './schema.js';
import { PCI_BDF_RE } from './schema.js';

export interface PciFunction {
  readonly name: string;
  readonly iommuGroup: number;
  readonly vectors: number;
  readonly msix: boolean;
  /** The requester ID of its writes on the host: bus << 8 | slot << 3 | function (pci_dev_id). */
  readonly hostDeviceId: number;
  /** Its requester ID in the guest. */
  readonly guestDeviceId: number;
  /** The guest LPI of vector 0; vector k is lpiBase + k. */
  readonly lpiBase: number;
}

/** The PCI functions of a scenario, in file order. */
export function pciFunctions(s: Pick<Scenario, 'devices'>): PciFunction[] {
  const out: PciFunction[] = [];
  let lpi = LPI_BASE;
  for (const d of s.devices) {
    if (d.bus !== 'pci' || d.msi === undefined) continue;
    const m = PCI_BDF_RE.exec(d.name);
    const bdf = m === null ? 0 : (Number.parseInt(m[2]!, 16) << 8) | (Number.parseInt(m[3]!, 16) << 3) | Number(m[4]);
    out.push({
      name: d.name,
      iommuGroup: d.iommuGroup,
      vectors: d.msi.vectors,
      msix: d.msi.msix,
      hostDeviceId: d.deviceId ?? bdf,
      guestDeviceId: (out.length + 1) << 3,
      lpiBase: lpi,
    });
    lpi += d.msi.vectors;
  }
  return out;
}

/**
 * The host GIC of a run in `mode`: a GICv3 with LPIs (an ITS) when the scenario asks for them or passes a PCI
 * function; its GICv4.1 vPEs only in the forwarded run — the normal run is KVM booted with kvm-arm.vgic_v4_enable=0
 * (the parameter's default: vgic_v3_probe then leaves has_gicv4 off), which the model gives by not booting the host's
 * GICv4 layer, so no vPE, doorbell or vLPI exists and the vITS injects every MSI itself.
 */
export function hostLpiOptions(
  s: Pick<Scenario, 'devices' | 'host'>,
  mode: Mode,
): { nrLpis?: number; nrVpes?: number } {
  const fns = pciFunctions(s);
  const nrLpis = s.host.gic.nrLpis ?? (fns.length > 0 ? 1024 : undefined);
  if (nrLpis === undefined) return {};
  const nrVpes = mode === 'forwarded' ? s.host.gic.nrVpes : undefined;
  return nrVpes === undefined ? { nrLpis } : { nrLpis, nrVpes };
}
