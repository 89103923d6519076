/**
 * device.ts — TunDevice: one TUN interface and the file descriptors of its queues, with the
 * interface configuration masq needs (MTU, up/down, tx queue length, IPv4 address, IPv6 off,
 * checksum/TSO offload). Not on the packet path: the I/O thread takes `fds` and uses the batch
 * functions directly.
 *
 * Contract:
 *  - open() attaches `queues` fds to the device (creating it if needed). All queues share one
 *    set of flags: IFF_TUN | IFF_NO_PI, plus IFF_MULTI_QUEUE and IFF_VNET_HDR as requested.
 *    On failure every fd opened so far is closed and a TunError explains what to do.
 *  - A device created here disappears when its last fd is closed; a persistent one
 *    (`ip tuntap add`) stays and can be attached to again.
 *  - Every error is a TunError (errors.ts) with an errno-name `code`.
 *  - release() closes all fds once; later calls do nothing. Other methods throw after it.
 */
import { existsSync, writeFileSync } from 'node:fs';

import { getBinding, type IfType, type TunBinding } from './binding.js';
import { checkIfName, diagnoseAttach, IFF_UP, TunError, wrapError } from './errors.js';
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_USO4, TUN_F_USO6 } from './vnet.js';

/** The kernel's limit on queues per TUN device (MAX_TAP_QUEUES in drivers/net/tun.c). */
export const MAX_QUEUES = 256;

export interface TunOpenOptions {
  /** Interface name, at most 15 bytes. May contain one '%d' for the kernel to fill in. */
  name: string;
  /** Number of queues (fds). Default 1. More than 1 needs multiQueue. */
  queues?: number;
  /** IFF_MULTI_QUEUE. Default: true when queues > 1, else false. Must match a persistent device. */
  multiQueue?: boolean;
  /** IFF_VNET_HDR: every packet read or written is preceded by a 10-byte virtio_net_hdr. */
  vnetHdr?: boolean;
}

export interface OffloadOptions {
  /** TUN_F_CSUM: the kernel may hand us packets with a partial L4 checksum (NEEDS_CSUM). */
  csum: boolean;
  /** TUN_F_TSO4: the kernel may hand us TCP/IPv4 super-packets up to 64 KiB. Needs csum. */
  tso4: boolean;
  /**
   * TUN_F_USO4|TUN_F_USO6: the kernel may hand us UDP/IPv4 super-packets (gso_type UDP_L4) up
   * to 64 KiB. Needs csum. Linux 6.2+: older kernels refuse the bits with EINVAL. Both bits go
   * together because the kernel takes neither alone; IPv6 never reaches a masq device.
   */
  uso?: boolean;
}

/**
 * Parse a dotted quad into a host-order uint32, or null. The same rules as @masq/core's
 * parseIPv4 (addr.ts), kept here on purpose: the device layer does not depend on the core
 * (test/structure/dependencies.test.ts).
 */
function parseIPv4(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = v * 256 + n;
  }
  return v >>> 0;
}

export class TunDevice {
  readonly name: string;
  readonly fds: readonly number[];
  readonly multiQueue: boolean;
  readonly vnetHdr: boolean;
  readonly binding: TunBinding;
  #released = false;

  private constructor(
    name: string,
    fds: readonly number[],
    multiQueue: boolean,
    vnetHdr: boolean,
    binding: TunBinding,
  ) {
    this.name = name;
    this.fds = fds;
    this.multiQueue = multiQueue;
    this.vnetHdr = vnetHdr;
    this.binding = binding;
  }

  static open(opts: TunOpenOptions, binding: TunBinding = getBinding()): TunDevice {
    const bad = checkIfName(opts.name);
    if (bad) throw bad;
    const queues = opts.queues ?? 1;
    if (!Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) {
      throw new TunError('EINVAL', `queues must be an integer in 1..${MAX_QUEUES}, got ${queues}`);
    }
    const multiQueue = opts.multiQueue ?? queues > 1;
    if (queues > 1 && !multiQueue) {
      throw new TunError(
        'EINVAL',
        `${queues} queues need multiQueue: true (a TUN without IFF_MULTI_QUEUE has one fd)`,
      );
    }
    const vnetHdr = opts.vnetHdr ?? false;

    const fds: number[] = [];
    let name = opts.name;
    try {
      for (let q = 0; q < queues; q++) {
        const r = binding.open(name, { multiQueue, vnetHdr });
        fds.push(r.fd);
        name = r.name;
      }
    } catch (e: unknown) {
      for (const fd of fds) {
        try {
          binding.close(fd);
        } catch {
          // The fd is ours and open; a failure to close it cannot be acted on here.
        }
      }
      const code = (e as { code?: unknown }).code;
      const advice =
        code === 'EINVAL' || code === 'EBUSY' ? diagnoseAttach(name, code, multiQueue) : '';
      throw wrapError(e, advice);
    }
    return new TunDevice(name, fds, multiQueue, vnetHdr, binding);
  }

  get released(): boolean {
    return this.#released;
  }

  #live(what: string): void {
    if (this.#released) {
      throw new TunError('EBADF', `${what}: TUN device ${this.name} was released`);
    }
  }

  #call<T>(what: string, f: () => T): T {
    this.#live(what);
    try {
      return f();
    } catch (e: unknown) {
      throw wrapError(e);
    }
  }

  get mtu(): number {
    return this.#call('mtu', () => this.binding.getMtu(this.name));
  }

  set mtu(mtu: number) {
    if (!Number.isInteger(mtu) || mtu < 0) {
      throw new TunError('EINVAL', `MTU must be a non-negative integer, got ${mtu}`);
    }
    this.#call('mtu', () => this.binding.setMtu(this.name, mtu));
  }

  /** SIOCGIFFLAGS of the interface (IFF_UP, IFF_RUNNING, ...). */
  get flags(): number {
    return this.#call('flags', () => this.binding.getFlags(this.name));
  }

  get isUp(): boolean {
    return (this.flags & IFF_UP) !== 0;
  }

  up(): void {
    this.#call('up', () => this.binding.setUp(this.name, true));
  }

  down(): void {
    this.#call('down', () => this.binding.setUp(this.name, false));
  }

  get txQueueLen(): number {
    return this.#call('txQueueLen', () => this.binding.getTxQueueLen(this.name));
  }

  /** Length of the queue of packets waiting for us to read (per queue, it sizes each ring). */
  setTxQueueLen(n: number): void {
    if (!Number.isInteger(n) || n < 0) {
      throw new TunError('EINVAL', `tx queue length must be a non-negative integer, got ${n}`);
    }
    this.#call('setTxQueueLen', () => this.binding.setTxQueueLen(this.name, n));
  }

  /** Set the IPv4 address and prefix (replaces the primary address). */
  setAddress(addr: string | number, prefixLen: number): void {
    const a = typeof addr === 'number' ? addr : parseIPv4(addr);
    if (a === null || !Number.isInteger(a) || a < 0 || a > 0xffffffff) {
      throw new TunError('EINVAL', `not an IPv4 address: ${String(addr)}`);
    }
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32) {
      throw new TunError('EINVAL', `prefix length must be an integer in 0..32, got ${prefixLen}`);
    }
    this.#call('setAddress', () => this.binding.setAddress(this.name, a, prefixLen));
  }

  /**
   * Turn IPv6 off on the interface (no link-local address, no router solicitations reaching
   * the IPv4-only translator). Returns false when the kernel has no IPv6 for it.
   */
  disableIpv6(): boolean {
    this.#live('disableIpv6');
    const path = `/proc/sys/net/ipv6/conf/${this.name}/disable_ipv6`;
    if (!existsSync(path)) return false;
    try {
      writeFileSync(path, '1');
    } catch (e: unknown) {
      throw wrapError(e, `cannot write ${path}; run as root or grant CAP_NET_ADMIN`);
    }
    return true;
  }

  /**
   * TUNSETOFFLOAD. With csum the kernel may pass packets whose L4 checksum is partial
   * (virtio_net_hdr NEEDS_CSUM); with tso4, TCP/IPv4 super-packets up to 64 KiB (gso_type
   * TCPV4), so slots must then hold 65535 + VNET_HDR_LEN bytes. Needs vnetHdr.
   */
  enableOffload(opts: OffloadOptions): void {
    this.#live('enableOffload');
    if (!this.vnetHdr) {
      throw new TunError(
        'EINVAL',
        `enableOffload: TUN device ${this.name} was opened without vnetHdr; offload metadata ` +
          'travels in the virtio_net_hdr, so open it with vnetHdr: true',
      );
    }
    if ((opts.tso4 || opts.uso) && !opts.csum) {
      throw new TunError('EINVAL', 'enableOffload: tso4 and uso need csum (the kernel refuses segmentation offload alone)');
    }
    const flags = (opts.csum ? TUN_F_CSUM : 0) | (opts.tso4 ? TUN_F_TSO4 : 0) | (opts.uso ? TUN_F_USO4 | TUN_F_USO6 : 0);
    // Offload is a property of the device, not of a queue: one fd is enough.
    this.#call('enableOffload', () => this.binding.setOffload(this.fds[0], flags));
  }

  /** TUNGETIFF on queue `q`: the flags the kernel holds for the device. */
  ifType(q = 0): IfType {
    const fd = this.fds[q];
    if (fd === undefined) throw new TunError('EINVAL', `ifType: no queue ${q}`);
    return this.#call('ifType', () => this.binding.getIfType(fd));
  }

  /** Close every queue fd. Idempotent. A non-persistent device disappears with its last fd. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    let first: unknown = null;
    for (const fd of this.fds) {
      try {
        this.binding.close(fd);
      } catch (e: unknown) {
        first ??= e;
      }
    }
    if (first !== null) throw wrapError(first);
  }
}
