/**
 * alg/select.ts — which protocol helper a new session gets, in one lookup: a small
 * open-addressing table from (protocol, server port) to helper id, built when the helpers are
 * configured, so that a new flow to a port no helper wants costs one probe of a few words that
 * stay in the cache, instead of a call to each enabled helper's `match`.
 *
 * Contract: `get(proto, port)` is the first enabled helper, in registry order (registry.ts),
 * that wants the flow: with configured server ports (config `[alg_ports]`), when `proto` is
 * the helper's protocol and `port` is one of them; otherwise when the helper's
 * `match(proto, port)` holds; 0 when none does. That is the rule the engine's select()
 * applied helper by helper (alg.property.test.ts runs both on random configurations).
 * Sessions exist for ICMP, TCP and UDP only (translate.ts drops the rest), so a helper's
 * `match` is evaluated once per helper per process over those three protocols and every port
 * (AlgHelper.match is a pure function of its arguments, types.ts), and `get` of any other
 * protocol is 0. No allocation in `get`.
 */
import { IpProto } from '../wire/ipv4.js';
import { HELPERS } from './registry.js';
import type { AlgHelper } from './types.js';

const PROTOS = [IpProto.Icmp, IpProto.Tcp, IpProto.Udp];
const EMPTY = -1;

/** Per helper: the keys (proto << 16 | port) its `match` accepts, computed on first use. */
const matchedKeys = new Map<AlgHelper, Int32Array>();

function keysOf(h: AlgHelper): Int32Array {
  let k = matchedKeys.get(h);
  if (k === undefined) {
    const out: number[] = [];
    for (const p of PROTOS) for (let port = 0; port < 65536; port++) if (h.match(p, port)) out.push((p << 16) | port);
    k = Int32Array.from(out);
    matchedKeys.set(h, k);
  }
  return k;
}

export class AlgSelector {
  private keys = new Int32Array(8).fill(EMPTY);
  private ids = new Uint8Array(8);
  private mask = 7;
  /** 32 − log2(size): the top bits of the multiplicative hash index the table. */
  private shift = 29;

  /**
   * Build the table for the helpers with `enabled[id] === 1` (id = registry position + 1), each
   * with its configured server ports `serverPorts[id]`, or null for its own `match`.
   */
  configure(enabled: Uint8Array, serverPorts: ReadonlyArray<readonly number[] | null | undefined>): void {
    const want: number[] = [];
    const wantId: number[] = [];
    const seen = new Set<number>();
    for (let i = 0; i < HELPERS.length; i++) {
      const id = i + 1;
      if (enabled[id] !== 1) continue;
      const h = HELPERS[i]!;
      const own = serverPorts[id];
      const keys: ArrayLike<number> = own === null || own === undefined ? keysOf(h) : own.filter((p) => Number.isInteger(p) && p >= 0 && p <= 0xffff).map((p) => (h.proto << 16) | p);
      for (let j = 0; j < keys.length; j++) {
        const k = keys[j]!;
        // The first helper in registry order that wants a key keeps it (as select() returned).
        if (seen.has(k)) continue;
        seen.add(k);
        want.push(k);
        wantId.push(id);
      }
    }
    let bits = 3;
    while (1 << bits < want.length * 2) bits++;
    const size = 1 << bits;
    const keys = new Int32Array(size).fill(EMPTY);
    const ids = new Uint8Array(size);
    for (let j = 0; j < want.length; j++) {
      let i = Math.imul(want[j]!, 0x9e3779b1) >>> (32 - bits);
      while (keys[i] !== EMPTY) i = (i + 1) & (size - 1);
      keys[i] = want[j]!;
      ids[i] = wantId[j]!;
    }
    this.keys = keys;
    this.ids = ids;
    this.mask = size - 1;
    this.shift = 32 - bits;
  }

  /** The helper id for a new flow of `proto` to server port `port` (0..65535), or 0. */
  get(proto: number, port: number): number {
    const k = (proto << 16) | port;
    const keys = this.keys;
    let i = Math.imul(k, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const e = keys[i]!;
      if (e === k) return this.ids[i]!;
      if (e === EMPTY) return 0;
      i = (i + 1) & this.mask;
    }
  }
}
