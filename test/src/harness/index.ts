/**
 * index.ts — the end-to-end harness: namespace topologies, the commands and peers run inside
 * them, and their cleanup. See topology.ts for the address plan and the modes.
 */

export { createTopology, leftoverNamespaces, execSyncIn } from './topology.js';
export type { GatewayInfo, InsideHost, Namespaces, PeerRun, RouterInfo, Topology, TopologyMode, TopologyOptions, TunOptions } from './topology.js';
export { canRunNetns, haveTool, type Preflight } from './preflight.js';
export { sweepStale, namespacePattern, listNamespaces, DEFAULT_BASE, liveCount } from './cleanup.js';
export { run, runOk, runSync, inNetns, CommandError, type ExecOptions, type ExecResult } from './exec.js';
export { PEER_SCRIPT, TUN_NAT11_SCRIPT, PeerError, type PeerServer, type JsonObject } from './peer-process.js';
export type * from '../peers/protocol.js';
