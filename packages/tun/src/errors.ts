/**
 * errors.ts — TunError, the one error type that TunDevice throws, and the diagnosis of a failed
 * TUNSETIFF (which the kernel reports only as EINVAL or EBUSY) from what /sys says about the
 * existing device.
 *
 * Contract: every TunError has a `code` that is an errno name ('EPERM', 'EINVAL', ...), an
 * `errno` (negative, as in Node's system errors; 0 when the error was found before any system
 * call) and a message that says what to do. Native errors are wrapped, with the original kept
 * as `cause`.
 */
import { readFileSync } from 'node:fs';

/** ifreq flags of a TUN/TAP device (include/uapi/linux/if_tun.h), as /sys/class/net/X/tun_flags shows them. */
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NAPI = 0x0010;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_PERSIST = 0x0800;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;

/** Interface flags (SIOCGIFFLAGS, include/uapi/linux/if.h). */
export const IFF_UP = 0x1;
export const IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40;
export const IFF_NOARP = 0x80;

export class TunError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string | undefined;

  constructor(
    code: string,
    message: string,
    opts: { errno?: number; syscall?: string; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TunError';
    this.code = code;
    this.errno = opts.errno ?? 0;
    this.syscall = opts.syscall;
  }
}

interface SystemErrorLike {
  message: string;
  code: string;
  errno?: number;
  syscall?: string;
  /** The native binding's message without its generic advice. */
  detail?: string;
}

function isSystemError(e: unknown): e is SystemErrorLike {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string';
}

/**
 * Wrap an error thrown by a binding into a TunError. `advice`, when given, is more precise than
 * the binding's generic advice and replaces it (or is appended when there is no `.detail`).
 */
export function wrapError(e: unknown, advice = ''): TunError {
  if (e instanceof TunError && advice === '') return e;
  if (isSystemError(e)) {
    let message = e.message;
    if (advice) message = typeof e.detail === 'string' ? `${e.detail}: ${advice}` : `${e.message}. ${advice}`;
    return new TunError(e.code, message, {
      errno: typeof e.errno === 'number' ? e.errno : 0,
      ...(typeof e.syscall === 'string' ? { syscall: e.syscall } : {}),
      cause: e,
    });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new TunError('EUNKNOWN', advice ? `${msg}. ${advice}` : msg, { cause: e });
}

/**
 * Interface names: 1..15 bytes (IFNAMSIZ is 16 with the NUL), and what dev_valid_name() in
 * net/core/dev.c refuses: '.', '..', '/', ':' and whitespace. A single '%d' asks the kernel to
 * pick a number. Returns null when the name is acceptable, else the reason.
 */
export function checkIfName(name: string): TunError | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return new TunError('EINVAL', 'TUN device name must not be empty');
  if (bytes > 15) {
    return new TunError(
      'ENAMETOOLONG',
      `TUN device name "${name}" is ${bytes} bytes; Linux interface names are at most 15 ` +
        '(IFNAMSIZ 16 including the NUL)',
    );
  }
  if (name === '.' || name === '..' || /[/:\s]/.test(name)) {
    return new TunError(
      'EINVAL',
      `TUN device name "${name}" is not a valid interface name ('.', '..', '/', ':' and whitespace are refused)`,
    );
  }
  return null;
}

function sysfsRead(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * Explain an EINVAL/EBUSY from TUNSETIFF using /sys/class/net/NAME (the view of the caller's
 * network namespace when /sys was mounted for it, as `ip netns exec` does). Best effort: returns
 * '' when there is nothing more to say.
 */
export function diagnoseAttach(name: string, code: string, wantMultiQueue: boolean): string {
  const dir = `/sys/class/net/${name}`;
  if (sysfsRead(`${dir}/ifindex`) === null) return '';
  const raw = sysfsRead(`${dir}/tun_flags`);
  // Never advise deleting an interface: it may be the operator's (a LAN bridge, a VPN's TUN).
  // Only a TUN that someone made for masq (persistent, wrong multi_queue) gets the recreate
  // recipe, and that only conditionally.
  const own = `give masq a device name of its own (--tun masq0)`;
  const exists = `"${name}" exists with other settings: it is`;
  if (raw === null) return `${exists} not a TUN device (an interface of this host, which masq never takes over); ${own}`;
  const flags = Number.parseInt(raw, 16);
  if (Number.isNaN(flags)) return '';
  const kind = flags & IFF_PERSIST ? 'a persistent' : 'an existing';
  if (flags & IFF_TAP) {
    return `${exists} ${kind} TAP device (layer 2) and masq needs TUN; ${own}, or if you made this one for masq, make it a TUN: ip tuntap add dev NAME mode tun`;
  }
  const isMq = (flags & IFF_MULTI_QUEUE) !== 0;
  const remake = (mq: boolean): string => `if you made it for masq, recreate it: ip tuntap del dev ${name} mode tun${isMq ? ' multi_queue' : ''}; ip tuntap add dev ${name} mode tun${mq ? ' multi_queue' : ''}`;
  if (isMq !== wantMultiQueue) {
    return isMq
      ? `${exists} ${kind} multi_queue TUN; open it with multiQueue: true, or ${own}, or ${remake(false)}`
      : `${exists} ${kind} TUN without multi_queue; open it with multiQueue: false (queues: 1), or ${own}, or ${remake(true)}`;
  }
  if (code === 'EBUSY' && !isMq) {
    return `"${name}" is a single-queue TUN and another file descriptor is already attached to it (one reader only; ip -d link show ${name} tells more); ${own}`;
  }
  return '';
}
