/**
 * rpc.ts — comlink for the control plane, imported the way it works in Node ESM: its node
 * adapter's typings do not fit ESM, so both come through createRequire with explicit types.
 * The packet path never uses this (a round trip costs 25-100 µs).
 */
import { createRequire } from 'node:module';
import type { MessagePort } from 'node:worker_threads';
import type * as ComlinkTypes from 'comlink';

const require = createRequire(import.meta.url);
export const Comlink = require('comlink') as typeof ComlinkTypes;
type Endpoint = ComlinkTypes.Endpoint;
type Adapter = (p: unknown) => Endpoint;
const adapter = require('comlink/dist/umd/node-adapter.js') as Adapter | { default: Adapter };
const nodeEndpointFn: Adapter = typeof adapter === 'function' ? adapter : adapter.default;

export function nodeEndpoint(port: MessagePort): Endpoint {
  return nodeEndpointFn(port);
}
export type Remote<T> = ComlinkTypes.Remote<T>;
