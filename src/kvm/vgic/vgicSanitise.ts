/**
 * The memory attributes KVM accepts in the GIC's table registers (vgic-mmio-v3.c vgic_sanitise_field and its
 * shareability / inner / outer cacheability rules, vgic_sanitise_{propbaser,pendbaser}; vgic-its.c
 * vgic_sanitise_its_{baser,cbaser}): Outer Shareable becomes Inner Shareable, an inner non-cacheable mapping becomes
 * RaWb, outer attributes other than SameAsInner and nC become SameAsInner, and reserved bits read as zero.
 */

const GIC_BASER_OUTER_SHAREABLE = 2n;
const GIC_BASER_INNER_SHAREABLE = 1n;
const GIC_BASER_CACHE_NCNB = 0n;
const GIC_BASER_CACHE_NC = 1n;
const GIC_BASER_CACHE_RAWB = 3n;
const GIC_BASER_CACHE_SAME_AS_INNER = 0n;

type Rule = (field: bigint) => bigint;

const shareability: Rule = (f) => (f === GIC_BASER_OUTER_SHAREABLE ? GIC_BASER_INNER_SHAREABLE : f);
const innerCacheability: Rule = (f) =>
  f === GIC_BASER_CACHE_NCNB || f === GIC_BASER_CACHE_NC ? GIC_BASER_CACHE_RAWB : f;
const outerCacheability: Rule = (f) =>
  f === GIC_BASER_CACHE_SAME_AS_INNER || f === GIC_BASER_CACHE_NC ? f : GIC_BASER_CACHE_SAME_AS_INNER;

/** vgic_sanitise_field: the field at `shift` (`mask` wide, unshifted) replaced by what `rule` makes of it. */
function sanitiseField(reg: bigint, mask: bigint, shift: bigint, rule: Rule): bigint {
  const field = (reg >> shift) & mask;
  return (reg & ~(mask << shift)) | (rule(field) << shift);
}

const genmask = (h: bigint, l: bigint): bigint => ((1n << (h - l + 1n)) - 1n) << l;

/** Shareability[11:10] and the two cacheability fields at `inner` and `outer` (3 bits each). */
function sanitiseAttrs(reg: bigint, inner: bigint, outer: bigint): bigint {
  let r = sanitiseField(reg, 3n, 10n, shareability);
  r = sanitiseField(r, 7n, inner, innerCacheability);
  return sanitiseField(r, 7n, outer, outerCacheability);
}

/** vgic_sanitise_propbaser: InnerCache[9:7], OuterCache[58:56]; RES0 and PA[51:48] cleared. */
export function vgicSanitisePropbaser(reg: bigint): bigint {
  const r = sanitiseAttrs(reg, 7n, 56n);
  return r & ~(genmask(63n, 59n) | genmask(55n, 52n) | genmask(6n, 5n) | genmask(51n, 48n));
}

/** vgic_sanitise_pendbaser: like PROPBASER, PTZ[62] kept; RES0 and PA[51:48] cleared. */
export function vgicSanitisePendbaser(reg: bigint): bigint {
  const r = sanitiseAttrs(reg, 7n, 56n);
  return (
    r & ~((1n << 63n) | genmask(61n, 59n) | genmask(55n, 52n) | genmask(15n, 12n) | genmask(6n, 0n) | genmask(51n, 48n))
  );
}

/** vgic_sanitise_its_baser: InnerCache[61:59], OuterCache[55:53]; the page size forced to 64 KiB (Page_Size[9:8] = 2). */
export function vgicSanitiseItsBaser(reg: bigint): bigint {
  const r = sanitiseAttrs(reg, 59n, 53n);
  return (r & ~(3n << 8n)) | (2n << 8n);
}

/** vgic_sanitise_its_cbaser: the same attributes; the address made 64 KiB aligned (bits [15:12] cleared). */
export function vgicSanitiseItsCbaser(reg: bigint): bigint {
  return sanitiseAttrs(reg, 59n, 53n) & ~genmask(15n, 12n);
}

/** vgic-mmio.h extract_bytes: `num` bytes of a 64-bit register from byte `offset`. */
export function extractBytes(data: bigint, offset: number, num: number): bigint {
  return (data >> BigInt(offset * 8)) & ((1n << BigInt(num * 8)) - 1n);
}

/** vgic-mmio.c update_64bit_reg: a 32- or 64-bit write at byte `offset` (0 or 4) of a 64-bit register. */
export function update64bitReg(reg: bigint, offset: number, len: number, val: bigint): bigint {
  const lower = BigInt((offset & 4) * 8);
  const mask = (1n << BigInt(len * 8)) - 1n;
  return (reg & ~(mask << lower) & 0xffff_ffff_ffff_ffffn) | ((val & mask) << lower);
}
