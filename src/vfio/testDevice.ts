/** The platform device the tests pass through (issue 3's example): a level IRQ on INTID 80, an edge one on 81. */
import type { HostDeviceSpec } from '../machine.js';

export const DEV = 'fff51000.ethernet';

export function ethernetDevice(): HostDeviceSpec {
  return {
    name: DEV,
    iommuGroup: 7,
    irqs: [
      { intid: 80, trigger: 'level' },
      { intid: 81, trigger: 'edge' },
    ],
  };
}
