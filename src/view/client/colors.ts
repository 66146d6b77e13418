/** Colours per item style (timelineData.ts STYLE_*) and the legend that names them. */
import {
  STYLE_ACTIVE,
  STYLE_CHECK_MARKED,
  STYLE_DIRECT_VLPI,
  STYLE_DOORBELL,
  STYLE_GUEST,
  STYLE_HANDLER,
  STYLE_LINE,
  STYLE_MARKER,
  STYLE_RESIDENT,
  STYLE_VIRQ,
} from '../timelineData.js';

export const STYLE_COLORS: readonly string[] = [
  '#9aa5b1', // slice
  '#8fd19e', // guest mode
  '#f4a259', // host IRQ handler
  '#7fb3e6', // device line high
  '#e57373', // INTID active at the GIC
  '#b39ddb', // vIRQ in the guest
  '#c5e1a5', // vPE resident
  '#263238', // causal-chain event
  '#2e7d32', // direct vLPI
  '#ef6c00', // doorbell
  '#78909c', // instant
  '#9e9e9e', // checker step
  '#ffca28', // checker step that matters
  '#d50000', // violation
];

export const LEGEND: readonly [number, string][] = [
  [STYLE_GUEST, 'guest mode'],
  [STYLE_HANDLER, 'host IRQ handler'],
  [STYLE_LINE, 'device line high'],
  [STYLE_ACTIVE, 'INTID active'],
  [STYLE_VIRQ, 'vIRQ in guest'],
  [STYLE_RESIDENT, 'vPE resident'],
  [STYLE_MARKER, 'chain event'],
  [STYLE_DIRECT_VLPI, 'direct vLPI'],
  [STYLE_DOORBELL, 'doorbell'],
  [STYLE_CHECK_MARKED, 'step that matters'],
];
