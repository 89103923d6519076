/**
 * worker.ts — Worker entry of the metrics actor:
 *
 *   new Worker(new URL(import.meta.resolve('@masq/metrics/worker')), { workerData: init })
 *
 * where `init` is a MetricsActorInit (its Float64Arrays over SharedArrayBuffers are shared,
 * not copied). Talk to it over the Worker itself (its parentPort): the messages of actor.ts.
 * After `{type:'stop'}` the thread ends on its own; on an init or bind error it posts
 * `{type:'error'}` and exits with code 1.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { runMetricsActor, type MetricsActorInit } from './actor.js';

if (parentPort === null) throw new Error('@masq/metrics/worker must be started as a worker thread');

runMetricsActor(workerData as MetricsActorInit, parentPort).catch(() => {
  // The error was posted as {type:'error'}; the exit code says it too.
  process.exitCode = 1;
});
