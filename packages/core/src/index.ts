/**
 * @masq/core — the translation core: packet views, rules, the masquerade table and
 * translate(). No I/O, no clock, no threads: the gateway (packages/workers) supplies those.
 *
 * This entry exports what the other packages use, and nothing else: the gateway's pieces
 * (Dispatcher, Partition, SessionTable and its sizing, expiry, per-host counts, pins), the
 * configuration and rule language the CLI parses, the counter layout the metrics actor reads,
 * and the session and expectation listings the control socket serves. The rest of core (wire/
 * views, the table's record layout, the fast and slow paths) is reached only from inside.
 *
 * Other entries (package.json `exports`):
 *   @masq/core/testing   the one-thread harness (Nat) and what only tests use
 *   @masq/core/addr, /counters, /drop, /alg/types, /alg/registry
 *                        small modules the metrics actor and the CLI's routing load alone
 */
export { parseIPv4, formatIPv4 } from './addr.js';
export {
  ConfigError,
  formatDuration,
  parseDuration,
  parsePortRangeText,
  parseTimeouts,
  resolveConfig,
  timerMinimum,
  type ConfigInput,
  type Filtering,
  type NatConfig,
  type PortModeName,
  type PresetName,
  type Timeouts,
} from './config.js';
export { C, COUNTER_SLOTS, MAX_EXTERNALS, PROTO_INDEX_NAMES, TCP_STATE_NAMES, algErrorSlot, bytesOf, bytesSlot, packetsSlot, sumCounters } from './counters.js';
export { Dispatcher, DISPATCH_DROP, DISPATCH_HELD, DISPATCH_PASS, Side } from './dispatch.js';
export { DropReason, DROP_REASON_LABELS } from './drop.js';
/** The Internet checksum's sums (RFC 1071) and a big-endian read, for packet builders outside the core (workers' UDP coalescing). */
export { fold, pseudoHeaderSum, sumWords } from './wire/checksum.js';
export { u32 } from './wire/bytes.js';
export { nominateExpired } from './expiry.js';
export { hostCountsFor, recountHosts } from './hosts.js';
export { INLINE_BUDGET, jitFlag } from './jit.js';
export { formatProc, formatTable, listSessions, protoName, sessionMatches, sessionRow, stateName, type SessionFilter, type SessionRow } from './listing.js';
export { PortPlan } from './ports.js';
export { RuleSet, RuleSyntaxError, formatRule, formatRuleTable, parseRule, parseRules, ruleWarnings, type Rule } from './rules.js';
export { forwardPortCount, partitionSizes } from './sizing.js';
export { SessionTable, countersOf, type TableSizes } from './table.js';
export { Partition } from './translate.js';
export { Direction, VerdictKind, verdictArg, verdictKind } from './verdict.js';
export { ALG_ERROR_LABELS } from './alg/types.js';
export { algNames, checkAlgNames, parseAlgList } from './alg/registry.js';
export { PinTable, pinBytes } from './alg/pins.js';
export { formatExpectations, listExpectations, type ExpectationRow } from './alg/engine.js';
