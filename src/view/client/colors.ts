/** Colours per item style (timelineData.ts STYLE_*) and the legend that names them. */
export const STYLE_COLORS: readonly string[] = [
  '#9aa5b1', // slice
  '#8fd19e', // guest mode
  '#f4a259', // host IRQ handler
  '#7fb3e6', // device line high
  '#e57373', // INTID active at the GIC
  '#b39ddb', // vIRQ in the guest
  '#263238', // causal-chain event
  '#78909c', // instant
  '#9e9e9e', // checker step
  '#ffca28', // checker step that matters
  '#d50000', // violation
];

export const LEGEND: readonly [number, string][] = [
  [1, 'guest mode'],
  [2, 'host IRQ handler'],
  [3, 'device line high'],
  [4, 'INTID active'],
  [5, 'vIRQ in guest'],
  [6, 'chain event'],
  [9, 'step that matters'],
];
