/**
 * @masq/test — cross-package and end-to-end test support: the network-namespace harness
 * (harness/), traffic peers (peers/), and starters for the real gateway (gateway/, ops/).
 */
export * from './harness/index.js';
export { startMasq, launchMasq, MASQ_MAIN, type RunningGateway } from './gateway/start.js';
