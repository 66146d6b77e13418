/**
 * The Linux ABI of the model in one import: errno, ioctl number macros, struct codecs, and the uapi constants of
 * include/uapi/linux/{kvm,vfio,eventfd}.h and arch/arm64/include/uapi/asm/kvm.h by their Linux names, plus the irqfwd
 * extension of the kvm-vfio device (KVM_DEV_VFIO_DEVICE*, kvm_arch_forwarded_irq). docs/ABI.md is the reference.
 */
export * from './errno.js';
export * from './eventfd.js';
export * from './ioctl.js';
export * from './kvm.js';
export {
  type ArrayField,
  defineStruct,
  type Field,
  type Fields,
  type NumberField,
  type StructCodec,
  type StructInit,
  type StructOptions,
  type StructValue,
  type U64Field,
} from './struct.js';
export * from './vfio.js';
