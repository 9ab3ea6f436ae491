import type { DeploymentOptions } from './deployment.js';
import type { Placement } from './machine.js';

/** What every scenario gets: where processes run, whether to run small, and flags. */
export interface Context {
  readonly placement: Placement;
  readonly quick: boolean;
  readonly workers: number;
  /** --profile DIR: servers write CPU profiles there. */
  readonly profileDir: string | undefined;
  /** Node.js flags for every chatd server (--server-node-flags; by default the Docker image's). */
  readonly serverNodeFlags: readonly string[];
  /** --storage and --nodes: SQLite and one node by default. */
  readonly deployment: DeploymentOptions;
  /** Results of scenarios run before in this invocation (direct-latency uses direct-throughput's maximum). */
  readonly earlier: Map<string, Result[]>;
  log(line: string): void;
}

/** One line of a scenario's table. */
export interface Result {
  readonly scenario: string;
  /** What varied (durability, rate, group shape). */
  readonly setting: string;
  /** The figures, by name, already in their unit (see `units`). */
  readonly figures: Record<string, number>;
  /** Server CPU as a share of one core, and the generator's as a share of its cores. */
  readonly serverCpu: number;
  readonly generatorCpu: number;
  /** False when the load generator was the bottleneck: the figure is not the server's. */
  readonly valid: boolean;
  readonly note?: string;
}

export interface Scenario {
  readonly name: string;
  readonly summary: string;
  /** Experiments left out of a run of every scenario: they run when named with --scenario. */
  readonly onlyWhenNamed?: boolean;
  /** Runs on PostgreSQL and on several nodes too (--storage postgres, --nodes N); the others only on SQLite. */
  readonly anyDeployment?: boolean;
  run(context: Context): Promise<Result[]>;
}

/**
 * Who limited a run: the generator when its cores were nearly saturated while
 * the server's was not. Such a figure measures the generator, not chatd.
 */
export function generatorBound(serverCpu: number, generatorCpu: number): boolean {
  return generatorCpu >= 0.9 && serverCpu < 0.9;
}
