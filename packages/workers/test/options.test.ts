/**
 * options.test.ts — natConfigOf (supervisor.ts): the NAT configuration inside gateway options is
 * every key but the gateway's own, with `partitions` from `workers`; `masq run` and
 * Gateway.start both take it from here, so a new gateway option is listed once.
 */
import test from 'ava';
import { natConfigOf, type GatewayOptions } from '../src/supervisor.js';
import { DEFAULT_SCHED } from '../src/sched.js';

test('natConfigOf keeps the NAT configuration, drops every gateway option, takes partitions from workers', (t) => {
  const opts: GatewayOptions = {
    tun: 'masq0',
    outsideTun: 'masq1',
    rulesText: 'masquerade all from 10.0.0.0/8 to 0.0.0.0/0',
    workers: 3,
    slots: 64,
    slotSize: 2048,
    mtu: 1400,
    log: () => {},
    offload: false,
    runToCompletion: true,
    steering: false,
    sched: DEFAULT_SCHED,
    state: '/tmp/x',
    stateInterval: 5,
    udpCoalesce: false,
    parkRead: false,
    ioUring: false,
    externals: ['198.51.100.1'],
    filtering: 'endpoint',
    portLo: 20000,
    portHi: 30000,
    hostSessionLimit: 7,
  };
  t.deepEqual(natConfigOf(opts), { externals: ['198.51.100.1'], filtering: 'endpoint', portLo: 20000, portHi: 30000, hostSessionLimit: 7, partitions: 3 });
  t.deepEqual(natConfigOf({ tun: 'masq0', rulesText: '', externals: ['198.51.100.1'] }), { externals: ['198.51.100.1'], partitions: 1 });
});
