/**
 * tun-open.ts — opening the gateway's TUN device: queues, offloads and their fallback.
 *
 * Owns: the choice of queue mode (one queue per worker on a multi-queue device, or one) and of
 * the offloads the gateway runs with. Offloads are on unless the operator says --no-offload:
 * IFF_VNET_HDR with TUN_F_CSUM (partial checksums), TUN_F_TSO4 (TCP super-packets) and, where
 * the kernel has it (Linux 6.2+), TUN_F_USO4|USO6 (UDP super-packets). Each level the kernel
 * refuses falls back to the next (csum+tso4+uso → csum+tso4 → none, the last one reopening
 * the device without the vnet header) with one log line saying what was refused and why.
 *
 * Contract: `openTun` returns an up device and the offload level it really runs with; the
 * slot size and the vnet header length of the packet path follow that level, never the
 * request. Errors other than a refused offload (no permission, a busy or mismatched device)
 * are thrown as TunError with advice, after releasing whatever was opened.
 *
 * References: include/uapi/linux/if_tun.h (TUNSETOFFLOAD, TUN_F_*), drivers/net/tun.c
 * (tun_set_offload: unknown bits → EINVAL), virtio 1.1 §5.1.6 (the vnet header).
 */
import { TunDevice, TunError, errnoName, uringProbe, type TunBinding } from '@masq/tun';

/** What the gateway runs with. `uso` implies `tso4`, which implies `csum`. */
export type OffloadLevel = 'csum+tso4+uso' | 'csum+tso4' | 'off';

export interface OpenedTun {
  dev: TunDevice;
  offload: OffloadLevel;
}

export interface OpenTunOptions {
  name: string;
  mtu?: number;
  /** Ask for offloads (default true). False: the plain device, no vnet header. */
  offload?: boolean;
  /** Translation workers: a multi-queue device gets one queue per worker (at most `maxQueues`). */
  workers: number;
  /** At most this many queues (default 30, what the I/O thread polls; 29 beside an outside TUN). */
  maxQueues?: number;
  /** One line per refused offload level. */
  log?: (line: string) => void;
  /** The addon, or a stand-in in unit tests. */
  binding?: TunBinding;
}

/** The levels tried in order, with the TUNSETOFFLOAD options of each. */
const LEVELS: readonly { level: Exclude<OffloadLevel, 'off'>; opts: { csum: true; tso4: true; uso: boolean } }[] = [
  { level: 'csum+tso4+uso', opts: { csum: true, tso4: true, uso: true } },
  { level: 'csum+tso4', opts: { csum: true, tso4: true, uso: false } },
];

function reason(e: unknown): string {
  return e instanceof TunError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
}

/**
 * Open (or create) the TUN. With several workers it is multi-queue, one queue per worker
 * (each worker writes to its own queue fd; the I/O thread reads them all). A persistent
 * device made with `ip tuntap add` may or may not have multi_queue: try as preferred, then
 * the other way.
 */
export function openTun(o: OpenTunOptions): OpenedTun {
  const log = o.log ?? (() => {});
  const wantOffload = o.offload ?? true;
  const queues = Math.min(o.workers, o.maxQueues ?? 30);
  const preferMq = queues > 1;
  const open = (vnetHdr: boolean): TunDevice => {
    const tryOpen = (mq: boolean): TunDevice => TunDevice.open({ name: o.name, multiQueue: mq, queues: mq ? queues : 1, vnetHdr }, o.binding);
    try {
      return tryOpen(preferMq);
    } catch (e) {
      if (!(e instanceof TunError) || (e.code !== 'EINVAL' && e.code !== 'EBUSY')) throw e;
      try {
        return tryOpen(!preferMq);
      } catch {
        throw e;
      }
    }
  };

  let dev: TunDevice | null = null;
  let level: OffloadLevel = 'off';
  if (wantOffload) {
    dev = open(true);
    let refused = '';
    try {
      for (const l of LEVELS) {
        try {
          dev.enableOffload(l.opts);
          level = l.level;
          break;
        } catch (e) {
          if (!(e instanceof TunError) || e.code !== 'EINVAL') throw e;
          refused = reason(e);
        }
      }
    } catch (e) {
      // An offload call refused for another reason (EPERM in a restricted container, a
      // driver without the ioctl): run without offloads rather than not at all.
      if (!(e instanceof TunError)) {
        dev.release();
        throw e;
      }
      refused = reason(e);
    }
    if (level === 'csum+tso4') log(`masq: TUN ${dev.name}: the kernel refused UDP segmentation offload (${refused}); running with checksum + TSO4 offloads`);
    if (level === 'off') {
      dev.release();
      dev = null;
      log(`masq: TUN ${o.name}: offloads refused (${refused}); running without them (--no-offload silences this)`);
    }
  }
  dev ??= open(false);
  try {
    dev.disableIpv6();
    if (o.mtu) dev.mtu = o.mtu;
    if (dev.txQueueLen < 10000) dev.setTxQueueLen(10000);
    dev.up();
  } catch (e) {
    dev.release();
    throw e;
  }
  return { dev, offload: level };
}

/**
 * Whether each worker's queue can go through io_uring here (the addon's uringProbe: a ring with
 * DEFER_TASKRUN, a provided-buffer ring, a multishot read and poll): null when it can, else the
 * one log line that says why not and what masq does instead.
 */
export function ioUringRefusal(probe: () => number = uringProbe): string | null {
  const r = probe();
  if (r === 0) return null;
  const why =
    r === -22 || r === -95
      ? ': multishot reads need Linux 6.7'
      : r === -1 || r === -38
        ? ': io_uring is disabled here (kernel.io_uring_disabled, a seccomp filter) or the addon was built without it'
        : '';
  return `masq: io_uring refused (${errnoName(r)}${why}); workers read and write their queues with read(2) and write(2)`;
}
