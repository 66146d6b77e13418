/**
 * vgic-kvm-device.c vgic_check_iorange (Linux 6.1): whether a vGIC MMIO region [addr, addr + size) may be placed in
 * the VM's IPA space — aligned, not wrapping, inside the IPA size. Shared by the vGIC-v2 and vGIC-v3 devices and by
 * vgic_v3_check_base.
 */
import { errno } from '../../abi/errno.js';

/** The errno vgic_check_iorange gives a region (its "already set" test aside), or null when it fits. */
export function vgicIorangeError(
  ipaBits: number,
  addr: bigint,
  alignment: bigint,
  size: bigint,
): 'EINVAL' | 'E2BIG' | null {
  if (addr % alignment !== 0n || size % alignment !== 0n) return 'EINVAL';
  if (addr + size > 0xffff_ffff_ffff_ffffn) return 'EINVAL';
  const physSize = 1n << BigInt(ipaBits);
  if (addr >= physSize || addr + size > physSize) return 'E2BIG';
  return null;
}

/** vgic_check_iorange: EEXIST when the base is already set, then the region's errno, each with its reason. */
export function vgicCheckIorange(
  ipaBits: number,
  alreadySet: boolean,
  addr: bigint,
  alignment: bigint,
  size: bigint,
  what: string,
): void {
  if (alreadySet) throw errno('EEXIST', `vGIC ${what} base already set`);
  const e = vgicIorangeError(ipaBits, addr, alignment, size);
  if (e === 'EINVAL') {
    const aligned = addr % alignment === 0n && size % alignment === 0n;
    throw errno(
      'EINVAL',
      aligned ? `vGIC ${what} region wraps` : `vGIC ${what} base not ${alignment / 1024n}K aligned`,
    );
  }
  if (e === 'E2BIG') throw errno('E2BIG', `vGIC ${what} region beyond the ${ipaBits}-bit IPA space`);
}
