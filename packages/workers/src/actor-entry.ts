/**
 * actor-entry.ts — the piscina worker module. Each task is one long-lived actor: a
 * translation partition, the timer, or the metrics actor. The task's promise settles when
 * the actor stops (or rejects when its thread dies, which tells the supervisor to restart
 * it). The metrics actor is composed in by the caller (the CLI): the task names the module
 * that exports `runMetricsActor(init, port)`, so this package does not depend on metrics.
 */
import type { MessagePort } from 'node:worker_threads';
import type { GatewaySpec } from './spec.js';
import { runPartition } from './partition-actor.js';
import { runTimer } from './timer-actor.js';

/** What a metrics actor module exports (e.g. @masq/metrics/actor). */
interface MetricsActorModule {
  runMetricsActor(init: unknown, port: MessagePort): Promise<void>;
}

export type ActorTask =
  | { kind: 'partition'; spec: GatewaySpec; index: number; port: MessagePort }
  | { kind: 'timer'; spec: GatewaySpec }
  | { kind: 'metrics'; module: string; init: unknown; port: MessagePort };

export default async function actor(task: ActorTask): Promise<string> {
  switch (task.kind) {
    case 'partition':
      return runPartition(task.spec, task.index, task.port);
    case 'timer':
      return runTimer(task.spec);
    case 'metrics': {
      const m = (await import(task.module)) as MetricsActorModule;
      await m.runMetricsActor(task.init, task.port);
      return 'metrics stopped';
    }
  }
}
