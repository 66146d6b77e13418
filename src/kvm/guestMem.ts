/**
 * The guest's RAM as KVM reads and writes it (virt/kvm/kvm_main.c kvm_read_guest, kvm_write_guest): the emulated ITS
 * reads its command queue and tables there, the vGIC-v3 the LPI configuration and pending tables. The model keeps no
 * memslots (KVM_SET_USER_MEMORY_REGION is not modelled): every IPA below the VM's IPA size is RAM, sparse pages that
 * read as zero until written (hw/physMem.ts), so a guest access beyond the IPA size is the only one that fails, with
 * -EFAULT as __kvm_read_guest_page does for an address no memslot covers. The guest's own loads and stores reach the
 * same pages directly (normal memory does not trap).
 */
import { ERRNO } from '../abi/errno.js';
import { PhysicalMemory } from '../hw/physMem.js';

export class KvmGuestMemory {
  readonly ram = new PhysicalMemory();

  constructor(readonly ipaBits: number) {}

  /** Whether [gpa, gpa + len) lies in guest RAM (kvm_is_visible_gfn for each page). */
  visible(gpa: number, len: number): boolean {
    return Number.isInteger(gpa) && gpa >= 0 && gpa + len <= 2 ** this.ipaBits;
  }

  /** kvm_read_guest of one byte: the byte, or -EFAULT. */
  readU8(gpa: number): number {
    return this.visible(gpa, 1) ? this.ram.readU8(gpa) : -ERRNO.EFAULT;
  }

  /** kvm_write_guest of one byte: 0, or -EFAULT. */
  writeU8(gpa: number, v: number): number {
    if (!this.visible(gpa, 1)) return -ERRNO.EFAULT;
    this.ram.writeU8(gpa, v);
    return 0;
  }

  /**
   * kvm_read_guest of a naturally aligned little-endian u64 into out[at] (low word) and out[at + 1]: 0, or -EFAULT.
   * The ITS reads its 32-byte commands as four of these.
   */
  readU64(gpa: number, out: Uint32Array, at: number): number {
    if (!this.visible(gpa, 8) || gpa % 8 !== 0) return -ERRNO.EFAULT;
    this.ram.readU64(gpa, out, at);
    return 0;
  }

  /** kvm_write_guest of a naturally aligned little-endian u64 given as halves: 0, or -EFAULT. */
  writeU64(gpa: number, lo: number, hi: number): number {
    if (!this.visible(gpa, 8) || gpa % 8 !== 0) return -ERRNO.EFAULT;
    this.ram.writeU64(gpa, lo, hi);
    return 0;
  }
}
