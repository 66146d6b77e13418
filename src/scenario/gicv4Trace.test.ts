// The GICv4.1 tracepoints where the model acts, on test/e2e/vgicV4.test.ts's machine traced from power-on: the host's
// its_map_vlpi as ITS commands, an MSI to the resident vPE as a direct vLPI with no exit (vgic_v4_load left it
// resident), and one to the vPE of a vCPU in WFI through its doorbell (its_vpe_4_1_deschedule with DB set,
// vgic_v4_doorbell_handler).
import { describe, expect, it } from 'vitest';
import { forwardedMsi } from '../../test/fixtures/vgicV4Setup.js';
import { hostTracer, tracedVgicV4 } from '../../test/fixtures/vgicV4Trace.js';
import { MAX_ARGS } from '../trace/events.js';
import type { Tracer } from '../trace/tracer.js';

interface Rec {
  name: string;
  cpu: number;
  f: Record<string, unknown>;
}

function records(tr: Tracer): Rec[] {
  const out: Rec[] = [];
  const r = tr.ring;
  for (let i = 0; i < r.size; i++) {
    const p = r.slot(i);
    const def = tr.events.byId(r.event[p]!);
    out.push({ name: def.name, cpu: r.cpu[p]!, f: tr.events.decode(def, r.args, p * MAX_ARGS, r.strings) });
  }
  return out;
}

describe('GICv4.1 trace events (its_cmd, its_translate, gic_vpendbaser, gic_vpe_doorbell, gic_vlpi_iar)', () => {
  const t = tracedVgicV4();
  const recs = records(t.tracer);
  const names = recs.map((r) => r.name);
  const xlates = recs.flatMap((r, i) => (r.name === 'its_translate' ? [i] : []));

  it('its_map_vlpi is a VMAPTI of the device event to vPE 0, each command reported as executed', () => {
    const vmapti = recs.find((r) => r.name === 'its_cmd' && r.f.cmd === 0x2a);
    expect(vmapti?.f).toMatchObject({ devid: 0x100, eventid: 0, intid: 8192, vpeid: 0, ok: true });
    expect(recs.filter((r) => r.name === 'its_cmd').every((r) => r.f.ok === true)).toBe(true);
    expect(recs.some((r) => r.name === 'its_cmd' && r.f.cmd === 0x29)).toBe(true); // VMAPP at vgic_v4_init
  });

  it('resident: the translation is a vLPI for vCPU 0 and the guest acknowledges it with no exit in between', () => {
    expect(xlates).toHaveLength(2);
    const first = xlates[0]!;
    expect(recs[first]!.f).toMatchObject({ devid: 0x100, eventid: 0, intid: 8192, vpeid: 0, vcpu: 0, pe: 1 });
    expect(recs[first]!.f.result).toBe(2); // ITS_XLATE_VLPI
    const iar = names.indexOf('gic_vlpi_iar', first);
    expect(recs[iar]!).toMatchObject({ cpu: 1, f: { pe: 1, vpeid: 0, vcpu: 0, vintid: 8192 } });
    expect(names.slice(first, iar)).not.toContain('kvm_exit');
    expect(names.slice(first, iar)).not.toContain('gic_vpe_doorbell');
  });

  it('non-resident: descheduled with DB, the translation goes to the VPT, the doorbell fires, KVM handles it', () => {
    const second = xlates[1]!;
    expect(recs[second]!.f.result).toBe(3); // ITS_XLATE_VPT
    const put = names.lastIndexOf('gic_vpendbaser', second);
    expect(recs[put]!.f).toMatchObject({ pe: 1, vpeid: 0, vcpu: 0, valid: false, doorbell: true, pendinglast: false });
    // the host takes the doorbell LPI like any LPI: ICC_IAR1_EL1, the priority drop first (irq-gic-v3.c
    // gic_complete_ack), then the handler
    expect(names.slice(second + 1, second + 7)).toEqual([
      'gic_vpe_doorbell',
      'gic_iar',
      'gic_eoir',
      'irq_handler_entry',
      'vgic_v4_doorbell',
      'irq_handler_exit',
    ]);
    const doorbell = t.kvmVm.vgic!.itsVm!.vpes[0]!;
    expect(recs[second + 1]!).toMatchObject({ cpu: 1, f: { pe: 1, vpeid: 0, vcpu: 0, vintid: 8192 } });
    expect(recs[second + 2]!.f.intid).toBe(recs[second + 1]!.f.intid); // the doorbell's LPI
    expect(recs[second + 5]!.f).toMatchObject({ vcpu: 0, irq: doorbell.irq });
    // vgic_v4_load makes it resident again before the guest takes the vLPI
    const load = names.indexOf('gic_vpendbaser', second);
    expect(recs[load]!.f.valid).toBe(true);
    expect(names.indexOf('gic_vlpi_iar', second)).toBeGreaterThan(load);
  });

  it('HostTrace installs the GIC hooks; on a machine nobody traces they stay null (one test per step, nothing else)', () => {
    const traced = t.host.irq.version === 'v3' ? t.host.irq.gic : null;
    expect(traced?.its?.trace).not.toBeNull();
    expect(traced?.vlpis?.trace).not.toBeNull();
    const { host } = forwardedMsi();
    const gic = host.irq.version === 'v3' ? host.irq.gic : null;
    expect(gic?.its?.trace).toBeNull();
    expect(gic?.vlpis?.trace).toBeNull();
  });
});

describe("vgic_its_inject: without GICv4 the MSI goes through the host LPI, the eventfd and KVM's emulated ITS", () => {
  it('vgic_its_trigger_msi / vgic_its_inject_cached_translation make vLPI 8192 of vCPU 0 pending', () => {
    const t = hostTracer();
    const { host, hw } = forwardedMsi({ nrVpes: 0, onHost: t.onHost });
    hw.fire(0);
    host.settle();
    hw.fire(0);
    host.settle();
    const recs = records(t.tracer);
    const xlate = recs.filter((r) => r.name === 'its_translate');
    expect(xlate.map((r) => r.f.result)).toEqual([1, 1]); // ITS_XLATE_LPI: the function's host LPI, no vPE
    const inj = recs.filter((r) => r.name === 'vgic_its_inject');
    expect(inj).toHaveLength(2);
    for (const r of inj) expect(r.f).toMatchObject({ devid: 8, eventid: 0, vintid: 8192, vcpu: 0 });
    expect(inj[1]!.f.cached).toBe(true); // the first translation filled vgic_its_cache_translation's cache
    expect(recs.some((r) => r.name.startsWith('gic_vp') || r.name === 'gic_vlpi_iar')).toBe(false);
  });
});
