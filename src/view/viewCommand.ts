/**
 * `irqfwd view [scenario | trace.json | replay file] [-o page.html | --serve [--port N]]`: the input → the timeline
 * page → a file or a 127.0.0.1 server. src/cli/commands.ts parses the options and supplies how a scenario runs.
 */
import { join } from 'node:path';
import { classifyViewFile, ViewInputError } from './chromeTrace.js';
import { buildViewPage } from './page.js';
import { startViewServer, type ViewServer } from './serve.js';
import { buildTimeline } from './timelineModel.js';
import { type ViewSource, viewOfChromeFile, viewOfReplayFile, viewOfScenarioRuns } from './viewInput.js';

export interface ViewIo {
  stdout(s: string): void;
  readFile(path: string): string;
  writeFile(path: string, data: string): void;
  exists(path: string): boolean;
  tmpdir(): string;
}

export interface ViewOptions {
  readonly output?: string;
  readonly serve: boolean;
  readonly port?: number;
  /** Options that only make sense for a scenario (named for the error). */
  readonly scenarioOnly: readonly string[];
  /** Resolves once the server should stop (the CLI: SIGINT/SIGTERM). */
  readonly untilStopped?: (server: ViewServer) => Promise<void>;
}

/** Runs a scenario in both modes and returns each mode's Chrome JSON trace. */
export type ScenarioTraces = (
  arg: string | undefined,
) => Promise<{ name: string; runs: readonly { mode: string; data: string }[] }>;

export async function viewSource(
  arg: string | undefined,
  opts: ViewOptions,
  io: ViewIo,
  scenarioTraces: ScenarioTraces,
): Promise<ViewSource> {
  if (arg !== undefined && io.exists(arg)) {
    const text = io.readFile(arg);
    const kind = classifyViewFile(text);
    if (kind !== 'scenario' && opts.scenarioOnly.length > 0)
      throw new ViewInputError(`${opts.scenarioOnly.join(', ')} applies to scenarios, not to ${kind} files`);
    if (kind === 'chrome') return viewOfChromeFile(arg, text);
    if (kind === 'replay') return viewOfReplayFile(arg, text);
  }
  const { name, runs } = await scenarioTraces(arg);
  return viewOfScenarioRuns(name, runs);
}

const fileSafe = (s: string): string => s.replace(/[^A-Za-z0-9_.-]+/g, '_');

/** Returns the exit code (0); bad input throws ViewInputError. */
export async function viewCommand(
  arg: string | undefined,
  opts: ViewOptions,
  io: ViewIo,
  scenarioTraces: ScenarioTraces,
): Promise<number> {
  if (opts.serve && opts.output !== undefined) throw new ViewInputError('view: -o and --serve exclude each other');
  if (!opts.serve && opts.port !== undefined) throw new ViewInputError('view: --port needs --serve');
  const source = await viewSource(arg, opts, io, scenarioTraces);
  const data = buildTimeline(source.title, source.runs);
  const html = await buildViewPage(data);
  const what = `${source.title} — ${data.itemStart.length.toLocaleString('en-US')} events in ${data.lanes.length} lanes`;
  if (opts.serve) {
    const server = await startViewServer(html, opts.port ?? 0);
    io.stdout(`irqfwd view: ${what}\nserving ${server.url} (127.0.0.1 only; Ctrl-C stops)\n`);
    await (opts.untilStopped ?? (() => Promise.resolve()))(server);
    await server.close();
    return 0;
  }
  const out = opts.output ?? join(io.tmpdir(), 'irqfwd', `${fileSafe(source.title.split(':')[0]!)}.view.html`);
  io.writeFile(out, html);
  io.stdout(`irqfwd view: ${what}, written to ${out}\n`);
  return 0;
}

/** Waits for SIGINT or SIGTERM (the CLI's --serve). */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}
