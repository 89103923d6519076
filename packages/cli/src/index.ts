/**
 * @masq/cli — the `masq` command (main.ts is the executable). Exported for tests and for
 * embedding: the routing recipe, the control-socket client, and run-flag parsing.
 */
export { routingRecipe, routingUndo, routingPhases, applyRecipe, type RoutingOptions } from './routing.js';
export { request, PROTOCOL_VERSION, DEFAULT_CONTROL_PATH, ControlError } from './control.js';
export { runSettings, UsageError, DEFAULT_METRICS } from './run.js';
