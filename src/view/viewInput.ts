/**
 * What `irqfwd view` shows, from each kind of input: a Chrome trace file (one run), a checker replay file (the
 * counterexample, through src/check/counterexampleTrace.ts `replayToChromeTrace`), or the traces of a scenario's
 * normal and forwarded runs (the CLI runs those and hands them here).
 */
import { basename } from 'node:path';
import { replayToChromeTrace } from '../check/counterexampleTrace.js';
import { parseReplayFile, type ReplayFile, ReplayFileError } from '../check/replay.js';
import { asChromeTrace, parseChromeTrace, ViewInputError } from './chromeTrace.js';
import type { TimelineRun } from './timelineModel.js';

export interface ViewSource {
  readonly title: string;
  readonly runs: readonly TimelineRun[];
}

export function viewOfChromeFile(path: string, text: string): ViewSource {
  const trace = parseChromeTrace(text, path);
  return { title: basename(path), runs: [{ label: 'trace', source: path, trace }] };
}

export function viewOfScenarioRuns(name: string, runs: readonly { mode: string; data: string }[]): ViewSource {
  return {
    title: `${name}: ${runs.map((r) => r.mode).join(' vs ')}`,
    runs: runs.map((r) => ({
      label: r.mode,
      source: `scenario ${name}`,
      trace: parseChromeTrace(r.data, `${name} (${r.mode})`),
    })),
  };
}

export function viewOfReplayFile(path: string, text: string): ViewSource {
  let file: ReplayFile;
  try {
    file = parseReplayFile(text);
  } catch (e) {
    if (e instanceof ReplayFileError) throw new ViewInputError(`${path}: ${e.message}`);
    throw e;
  }
  const trace = asChromeTrace(replayToChromeTrace(file) as unknown, `${path} (replayed)`);
  return {
    title: `${basename(path)}: ${file.scenario} (${file.variant}) — ${file.invariant || 'counterexample'}`,
    runs: [{ label: `counterexample (${file.variant})`, source: path, trace }],
  };
}
