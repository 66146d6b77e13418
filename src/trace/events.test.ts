/**
 * The kernel events render exactly as their TP_printk does. Each expected string is the TP_printk format of the
 * header named in the test, applied by hand to the arguments (the headers were read from torvalds/linux:
 * include/trace/events/irq.h, include/trace/events/kvm.h, arch/arm64/kvm/trace_arm.h,
 * arch/arm64/kvm/vgic/trace.h; symbol tables from arch/arm64/include/asm/kvm_asm.h and kvm_arm.h).
 */
import { describe, expect, it } from 'vitest';
import * as E from './events.js';
import { TraceRing } from './ring.js';

const reg = E.createStandardRegistry();
const ring = new TraceRing({ capacity: 8 });

/** Emit one record through the ring and render its fields, as the writers do. */
function render(id: number, ...a: number[]): string {
  ring.clear();
  ring.emitAt(0, id, 0, 1, ...a);
  const p = ring.slot(0);
  const def = reg.byId(id);
  return reg.formatFields(def, reg.decode(def, ring.args, p * E.MAX_ARGS, ring.strings));
}

const PC = 0xffff800008a1b2c4n;
const pcLo = E.u64lo(PC);
const pcHi = E.u64hi(PC);

describe('event registry', () => {
  it('gives every EV_* constant the id of its definition', () => {
    const ids: Record<string, number> = {};
    for (const [k, v] of Object.entries(E)) if (k.startsWith('EV_') && typeof v === 'number') ids[k] = v;
    expect(Object.keys(ids).length).toBe(E.STANDARD_EVENTS.length);
    for (const def of reg.list) expect(ids[`EV_${def.name.toUpperCase()}`]).toBe(def.id);
  });

  it('lays fields out in slots, u64 taking two, and refuses oversized or duplicate events', () => {
    const exit = reg.byId(E.EV_KVM_EXIT);
    expect(exit.fields.map((f) => f.slot)).toEqual([0, 1, 2]);
    expect(exit.slots).toBe(4);
    expect(reg.byId(E.EV_KVM_MMIO).slots).toBe(6);
    expect(() => reg.register(E.STANDARD_EVENTS[0]!)).toThrow(/already registered/);
    const r = new E.EventRegistry();
    expect(() =>
      r.register({
        name: 'big',
        system: 'x',
        source: 'test',
        fields: [
          { name: 'a', type: 'u64' },
          { name: 'b', type: 'u64' },
          { name: 'c', type: 'u64' },
          { name: 'd', type: 'u64' },
          { name: 'e', type: 'int' },
        ],
        fmt: '',
        printArgs: () => [],
      }),
    ).toThrow(/slots/);
  });

  it('names each shared event with its kernel system and header', () => {
    expect(reg.byId(E.EV_IRQ_HANDLER_ENTRY).system).toBe('irq');
    expect(reg.byId(E.EV_KVM_EXIT).system).toBe('kvm');
    expect(reg.byId(E.EV_KVM_EXIT).source).toBe('arch/arm64/kvm/trace_arm.h');
    expect(reg.byId(E.EV_VGIC_UPDATE_IRQ_PENDING).source).toBe('arch/arm64/kvm/vgic/trace.h');
    expect(reg.byId(E.EV_GIC_LR_WRITE).system).toBe('irqfwd');
  });
});

describe('kernel event formats', () => {
  it('irq:irq_handler_entry / irq_handler_exit (include/trace/events/irq.h)', () => {
    const name = ring.intern('vfio-irq[0](fff51000.ethernet)');
    expect(render(E.EV_IRQ_HANDLER_ENTRY, 42, name)).toBe('irq=42 name=vfio-irq[0](fff51000.ethernet)');
    expect(render(E.EV_IRQ_HANDLER_EXIT, 42, 1)).toBe('irq=42 ret=handled');
    expect(render(E.EV_IRQ_HANDLER_EXIT, 42, 0)).toBe('irq=42 ret=unhandled');
  });

  it('kvm:kvm_userspace_exit (include/trace/events/kvm.h)', () => {
    expect(render(E.EV_KVM_USERSPACE_EXIT, 6, 0)).toBe('reason KVM_EXIT_MMIO (6)');
    expect(render(E.EV_KVM_USERSPACE_EXIT, 0, -4)).toBe('reason restart (4)');
    expect(render(E.EV_KVM_USERSPACE_EXIT, 0, -14)).toBe('reason error (14)');
    expect(render(E.EV_KVM_USERSPACE_EXIT, 99, 0)).toBe('reason 0x63 (99)');
  });

  it('kvm:kvm_vcpu_wakeup, kvm_set_irq, kvm_ack_irq, kvm_mmio (include/trace/events/kvm.h)', () => {
    expect(render(E.EV_KVM_VCPU_WAKEUP, 12345, 0, 1, 1)).toBe('wait time 12345 ns, polling valid');
    expect(render(E.EV_KVM_VCPU_WAKEUP, 800, 0, 0, 0)).toBe('poll time 800 ns, polling invalid');
    expect(render(E.EV_KVM_SET_IRQ, 48, 1, 0)).toBe('gsi 48 level 1 source 0');
    expect(render(E.EV_KVM_ACK_IRQ, 0, 48)).toBe('irqchip 0 pin 48');
    expect(render(E.EV_KVM_MMIO, E.KVM_TRACE_MMIO_WRITE, 4, 0x08010010, 0, 0x1b, 0)).toBe(
      'mmio write len 4 gpa 0x8010010 val 0x1b',
    );
  });

  it('kvm:kvm_entry / kvm_exit (arch/arm64/kvm/trace_arm.h)', () => {
    expect(render(E.EV_KVM_ENTRY, pcLo, pcHi)).toBe('PC: 0xffff800008a1b2c4');
    expect(render(E.EV_KVM_EXIT, E.ARM_EXCEPTION_IRQ, 0, pcLo, pcHi)).toBe(
      'IRQ: HSR_EC: 0x0000 (UNKNOWN), PC: 0xffff800008a1b2c4',
    );
    expect(render(E.EV_KVM_EXIT, E.ARM_EXCEPTION_TRAP, 0x24, pcLo, pcHi)).toBe(
      'TRAP: HSR_EC: 0x0024 (DABT_LOW), PC: 0xffff800008a1b2c4',
    );
    expect(render(E.EV_KVM_EXIT, E.ARM_EXCEPTION_TRAP, 0x01, pcLo, pcHi)).toBe(
      'TRAP: HSR_EC: 0x0001 (WFx), PC: 0xffff800008a1b2c4',
    );
    // ARM_EXCEPTION_IL has no entry in kvm_arm_exception_type: __print_symbolic falls back to 0x%lx.
    expect(render(E.EV_KVM_EXIT, E.ARM_EXCEPTION_IL, 0, 0x1000, 0)).toBe(
      '0x3: HSR_EC: 0x0000 (UNKNOWN), PC: 0x0000000000001000',
    );
  });

  it('kvm:kvm_irq_line, kvm_mmio_emulate, kvm_toggle_cache (arch/arm64/kvm/trace_arm.h)', () => {
    expect(render(E.EV_KVM_IRQ_LINE, 1, 0, 48, 1)).toBe(
      'Inject VGIC SPI interrupt (1), vcpu->idx: 0, num: 48, level: 1',
    );
    expect(render(E.EV_KVM_IRQ_LINE, 2, 3, 27, 0)).toBe(
      'Inject VGIC PPI interrupt (2), vcpu->idx: 3, num: 27, level: 0',
    );
    expect(render(E.EV_KVM_IRQ_LINE, 0, 1, 0, 1)).toBe('Inject CPU interrupt (0), vcpu->idx: 1, num: 0, level: 1');
    expect(render(E.EV_KVM_MMIO_EMULATE, pcLo, pcHi, 0xb9000020, 0, 0x3c5, 0)).toBe(
      'Emulate MMIO at: 0xffff800008a1b2c4 (instr: b9000020, cpsr: 000003c5)',
    );
    expect(render(E.EV_KVM_TOGGLE_CACHE, 0x40080000, 0, 0, 1)).toBe(
      'VM op at 0x0000000040080000 (cache was off, now on)',
    );
  });

  it('kvm:vgic_update_irq_pending (arch/arm64/kvm/vgic/trace.h)', () => {
    expect(render(E.EV_VGIC_UPDATE_IRQ_PENDING, 0, 48, 1)).toBe('VCPU: 0, IRQ 48, level: 1');
  });
});

describe('irqfwd event formats', () => {
  it('renders the model events', () => {
    const dev = ring.intern('fff51000.ethernet');
    expect(render(E.EV_DEVICE_ASSERT, dev, 42, 7)).toBe('dev=fff51000.ethernet intid=42 seq=7');
    expect(render(E.EV_GIC_IAR, 1023, 0)).toBe('intid=1023 seq=0');
    expect(render(E.EV_GIC_EOIR, 42, 1, 7)).toBe('intid=42 eoimode=1 seq=7');
    expect(render(E.EV_GIC_LR_WRITE, 0, 2, 42, 42, 1, 0, E.LR_STATE_PENDING, 7)).toBe(
      'vcpu=0 lr=2 vintid=42 pintid=42 hw=1 eoi=0 state=pending seq=7',
    );
    expect(render(E.EV_GIC_LR_WRITE, 1, 0, 40, 0, 0, 1, E.LR_STATE_PENDING_ACTIVE, 3)).toBe(
      'vcpu=1 lr=0 vintid=40 pintid=0 hw=0 eoi=1 state=pending+active seq=3',
    );
    expect(render(E.EV_VFIO_PLATFORM_IRQ, dev, 0, 42, E.VFIO_IRQ_AUTOMASKED, 7)).toBe(
      'dev=fff51000.ethernet index=0 irq=42 action=automasked seq=7',
    );
    expect(render(E.EV_IRQFD_INJECT, 10, 42, 1, 7)).toBe('gsi=10 vintid=42 level=1 seq=7');
    expect(render(E.EV_KVM_VFIO_ASSIGN_IRQ, dev, 0, 10, 42, -16)).toBe(
      'dev=fff51000.ethernet index=0 gsi=10 hwintid=42 ret=-16',
    );
    expect(render(E.EV_IRQ_FORWARD_SET, 42, 1, 0)).toBe('irq=42 forwarded=1 vcpu=0');
  });
});

describe('GICv3 ITS / GICv4.1 event formats (irqfwd: Linux traces none of these steps)', () => {
  it('its_cmd names the command (IHI 0069 §5.3 numbers) and prints an unknown one as 0x%lx', () => {
    expect(render(E.EV_ITS_CMD, 0x2a, 256, 0, 8192, 0, 1)).toBe(
      'cmd=VMAPTI devid=256 eventid=0 intid=8192 vpeid=0 ok=1',
    );
    expect(render(E.EV_ITS_CMD, 0x08, 256, 0, 0, -1, 0)).toBe('cmd=MAPD devid=256 eventid=0 intid=0 vpeid=-1 ok=0');
    expect(render(E.EV_ITS_CMD, 0x7f, 0, 0, 0, -1, 1)).toBe('cmd=0x7f devid=0 eventid=0 intid=0 vpeid=-1 ok=1');
  });

  it('its_translate says where the message went: an LPI, a resident vPE, a VPT, or nowhere', () => {
    expect(render(E.EV_ITS_TRANSLATE, 256, 0, 8192, 0, 0, 1, E.ITS_XLATE_VLPI)).toBe(
      'devid=256 eventid=0 intid=8192 vpeid=0 vcpu=0 pe=1 result=vlpi',
    );
    expect(render(E.EV_ITS_TRANSLATE, 256, 0, 8192, 0, 0, 1, E.ITS_XLATE_VPT)).toBe(
      'devid=256 eventid=0 intid=8192 vpeid=0 vcpu=0 pe=1 result=vpt',
    );
    expect(render(E.EV_ITS_TRANSLATE, 256, 1, 8193, -1, -1, 0, E.ITS_XLATE_LPI)).toBe(
      'devid=256 eventid=1 intid=8193 vpeid=-1 vcpu=-1 pe=0 result=lpi',
    );
    expect(render(E.EV_ITS_TRANSLATE, 7, 3, 1023, -1, -1, -1, E.ITS_XLATE_DROPPED)).toBe(
      'devid=7 eventid=3 intid=1023 vpeid=-1 vcpu=-1 pe=-1 result=dropped',
    );
  });

  it('gic_vpendbaser, gic_vpe_doorbell, gic_vlpi_iar, vgic_v4_doorbell, vgic_its_inject', () => {
    expect(render(E.EV_GIC_VPENDBASER, 1, 0, 0, 1, 0, 1)).toBe('pe=1 vpeid=0 vcpu=0 valid=1 doorbell=0 pendinglast=1');
    expect(render(E.EV_GIC_VPENDBASER, 1, 0, 0, 0, 1, 0)).toBe('pe=1 vpeid=0 vcpu=0 valid=0 doorbell=1 pendinglast=0');
    expect(render(E.EV_GIC_VPE_DOORBELL, 1, 0, 0, 8200, 8192)).toBe('pe=1 vpeid=0 vcpu=0 intid=8200 vintid=8192');
    expect(render(E.EV_GIC_VLPI_IAR, 1, 0, 0, 8192)).toBe('pe=1 vpeid=0 vcpu=0 vintid=8192');
    expect(render(E.EV_VGIC_V4_DOORBELL, 0, 3)).toBe('vcpu=0 irq=3');
    expect(render(E.EV_VGIC_ITS_INJECT, 8, 0, 8192, 1, 1)).toBe('devid=8 eventid=0 vintid=8192 vcpu=1 cached=1');
  });
});
