/**
 * How a counterexample's schedule step is named wherever it is shown: `step N`, and `step N*` when it matters
 * (counterexampleTrace.ts markedSteps decides which; the Chrome trace carries it as `marked`). The checker's text
 * trace (`# step N* …`) and the view's step list and timeline labels all spell it with this one function.
 */
export const stepMark = (index: number, marked: boolean): string => `step ${index}${marked ? '*' : ''}`;
