/**
 * partition-actor.ts — a translation worker: the single writer of one partition of the
 * masquerade table. Runs as a long-lived piscina task.
 *
 * Loop: take slot indices from the hand-off rings and the rx ring, translate each packet in
 * place (packages/core Partition.translate), write forwarded packets to the TUN in one batch,
 * pass hairpinned packets to their owner partition by ring, return slots to the I/O thread.
 * Expiry nominations from the timer actor are confirmed and freed here (only the owner
 * frees). Packets are handled in groups of 16 after a prefetch pass (Partition.prefetch). When
 * idle it parks — a synchronous wait: Atomics.waitAsync's 10-35 µs wake goes through the event
 * loop. Running to completion, by default (Linux 6.7+) its queue goes through one io_uring
 * (tun.c uringOpen): a multishot read fills slots it gave the kernel, and one io_uring_enter
 * per pass submits the pass's writes and takes what arrived, or sleeps until a packet, a ring
 * of its doorbell (its eventfd) or IDLE_PARK_MS. Without io_uring (`--no-io-uring`, or a
 * kernel that refuses it) it sleeps in read(2) on its own TUN queue (the addon's parkRead:
 * the packet that wakes it is read by that call; a ring interrupts it with a signal, and the
 * timer actor rings it every 20 ms); otherwise, or while it holds fragments or expectations,
 * in poll(2) on its eventfd and its queue for at most 20 ms (doorbell.ts). Every producer of
 * work rings the doorbell (peers' hand-offs and returned slots, the timer's expiry
 * nominations, and the supervisor after each control message), so the timeout only bounds how
 * late a held fragment is dropped on an idle gateway. It yields to the event loop (comlink:
 * listings, flushes, rule changes) when rung with no packet behind it, after a timeout, and
 * while busy whenever the shared clock has ticked (5 ms). Run to completion reads its queue by
 * readpolicy.ts: one packet per poll at light load (poll, read, write), growing batches in a
 * flood.
 *
 * Restart: every byte of partition state is in shared memory; a new actor for the same
 * partition rebuilds its views and carries on. Slots a dead actor had taken off its ring are
 * lost to the pool (at most one batch). The slots its io_uring held (given for reads, at most
 * URING_BUFS = 64, or submitted as writes) are marked in `held` (layout.ts); the new actor takes
 * them back (takeBackHeld), but only once the addon has cancelled every request of the dead
 * ring and closed it (CTL_URING = URING_CLOSED, stored by the dead thread's clean-up hook): before
 * that the kernel could still read a packet into one of them.
 */
import type { MessagePort } from 'node:worker_threads';
// The module's binding, not the global: Node's global `performance` is a getter, which
// optimized code looks up through an inline-cache call on every use (twice per park).
import { performance } from 'node:perf_hooks';
import { Dispatcher, Side, C, DropReason, Direction, VerdictKind, sessionMatches, verdictArg, verdictKind, type SessionFilter, type Timeouts, listExpectations, type ExpectationRow } from '@masq/core';
import { parkRead, parkReadDone, parkReadInit, readBatch, uringClose, uringOpen, uringPass, UringIo, writeBatch, yieldCpu } from '@masq/tun';
import { Ring } from './ring.js';
import { CTL_DOORBELL, CTL_PARKED, CTL_STOP, CTL_TID, CTL_URING, STACK_DATA, URING_OPEN, WORKER_STAT, WORKER_STAT_STRIDE } from './layout.js';
import { park, parkSaw, ring, IDLE_PARK_MS, PARK_HINT, PARK_RUNG, PARK_TIMEOUT } from './doorbell.js';
import { ReadPolicy } from './readpolicy.js';
import { UdpCoalescer } from './coalesce.js';
import { routeSlot, type RouteSink } from './route.js';
import { partitionOf, pinsOf, planOf, rulesOf, type GatewaySpec } from './spec.js';
import { applyThreadPolicy } from './sched.js';
import { Comlink, nodeEndpoint } from './rpc.js';
import { encodeSection, type EncodedSection } from './state.js';

const BATCH = 256;
/** A park that returned sooner than this (ms) did not sleep: the queue was already readable. */
const QUICK_PARK_MS = 0.005;
/** How long a worker woken by its TUN queue waits for the I/O thread's hand-off (ms). */
const HINT_WAIT_MS = 0.05;
/** Slots a worker on io_uring keeps in the kernel's buffer ring for its multishot read. */
const URING_BUFS = 64;
/** How long a restarted worker waits for its predecessor's ring to be closed (ms). */
const CLOSE_WAIT_MS = 2000;

export interface PartitionControl {
  ping(): number;
  flush(filter: SessionFilter): number;
  deleteSession(id: number): boolean;
  applyRules(rulesText: string): number;
  /** New idle timeouts for sessions refreshed from now on (a deadline already set stands). */
  setTimeouts(t: Timeouts): void;
  /** Enable exactly these protocol helpers for new sessions. */
  setAlg(names: string[], ports: Record<string, number[]>): void;
  expectations(): ExpectationRow[];
  crash(): void;
  /**
   * A consistent copy of this partition's table for the state file, encoded (state.ts:
   * block-elided, so a quiet table's copy is small), the clock it was taken at, and how long
   * it held this worker's packet path (ms). Encoding here costs one pass over the table;
   * a plain copy would cost the same pass plus faulting in a table-sized buffer (measured:
   * 6x longer for 172 MB).
   */
  snapshot(): { section: EncodedSection; ms: number };
}

export async function runPartition(spec: GatewaySpec, index: number, port: MessagePort): Promise<string> {
  const mem = spec.memory;
  applyThreadPolicy(spec.sched.workers, `translation worker ${index}`);
  const plan = planOf(spec);
  // One parse of the rules for the partition and, running to completion, its own classifier.
  const rules = rulesOf(spec.rulesText);
  const part = partitionOf(spec, index, plan, rules);
  const pool = new Uint8Array(mem.pool);
  const lens = new Int32Array(mem.lens);
  const ctl = new Int32Array(mem.control);
  const clock = new Float64Array(mem.clock); // read with plain loads: see the clock in layout.ts
  const stats = new Float64Array(mem.workerStats);
  const srow = index * WORKER_STAT_STRIDE;
  const rx = new Ring(mem.rx[index]!);
  const free = new Ring(mem.free[index]!);
  const inbound = mem.handoff.map((row) => new Ring(row[index]!)); // from each peer to me
  const outbound = mem.handoff[index]!.map((b) => new Ring(b)); // from me to each peer
  const nominate = new Ring(mem.nominate[index]!);
  const fd = spec.writeFds[index % spec.writeFds.length]!;
  const slotSize = mem.slotSize;
  const H = spec.vnetHdr;
  // Ring pops take BATCH; readOwn's own packets up to BATCH plus every held fragment a read releases.
  const entries = new Int32Array(BATCH + spec.config.fragmentHold);
  const outOff = new Uint32Array(BATCH);
  const outLen = new Uint32Array(BATCH);
  const outSlot = new Int32Array(BATCH);
  const werr = new Uint32Array(2);
  const noms = new Int32Array(1024);
  const counters = part.table.counters;
  const P = spec.config.partitions;

  // Run to completion (spec.ts): this worker reads its own TUN queue into the slots of its
  // home, classifies each packet as the I/O thread would (its own Dispatcher: fragments of one
  // datagram hash alike in the kernel's queue choice, so they reach one reader), translates
  // what it owns and hands the rest to their owners. The kernel's automatic flow steering puts
  // a flow on the queue that last wrote it — its owner's — so hand-offs are the exception.
  const rtc = spec.runToCompletion;
  const home = new Uint16Array(mem.slots);
  for (let r = 0; r <= P; r++) home.fill(r, spec.slotHomes[r]!, spec.slotHomes[r + 1]!);
  // The stack lives in shared memory (layout.ts): its depth is stored back before every
  // yield, so a restarted worker takes it over as it was.
  const stackHdr = new Int32Array(mem.stacks[index]!, 0, STACK_DATA);
  const stack = new Int32Array(mem.stacks[index]!, STACK_DATA * 4);
  let sp = stackHdr[0]!;
  const dispatcher = rtc ? new Dispatcher(rules, spec.config.externals, plan, P, spec.config.fragmentHold, spec.config.timeouts.fragment, pinsOf(spec)) : null;
  // Static mappings for the port forwards this partition owns (idempotent on restart).
  part.syncStatics(clock[0]!);

  const control: PartitionControl = {
    ping: () => index,
    flush: (f) => part.flush(clock[0]!, (sid) => sessionMatches(part.table, sid, f)),
    deleteSession: (id) => {
      if (!part.table.isLive(id)) return false;
      part.removeSession(id, clock[0]!);
      counters[C.SESSIONS_FLUSHED]!++;
      return true;
    },
    applyRules: (text) => {
      // The worker's own classifier (run to completion) follows the same rules.
      const next = rulesOf(text);
      dispatcher?.setRules(next);
      return part.applyRules(next, clock[0]!);
    },
    // The partition reads its config's timeouts on every refresh (the TCP ones through its
    // table, which setTimeouts refills); this thread is the only one that reads them.
    setTimeouts: (t) => part.setTimeouts(t),
    setAlg: (names, ports) => part.setAlg(names, ports),
    expectations: () => listExpectations(part.table, clock[0]!),
    // Served between two batches, so the table is not being written while it is copied.
    snapshot: () => {
      const t0 = performance.now();
      const section = encodeSection(`table.${index}`, new Uint8Array(spec.tables[index]!), clock[0]!);
      return Comlink.transfer({ section, ms: performance.now() - t0 }, [section.encoded.buffer]);
    },
    crash: () => {
      // For the supervisor's restart test: an uncaught exception ends this thread.
      setImmediate(() => {
        throw new Error(`partition ${index}: crash requested through the control plane`);
      });
    },
  };
  Comlink.expose(control, nodeEndpoint(port));

  let nWrite = 0;
  // io_uring (run to completion, spec.ioUring; tun.c uringOpen): the worker's queue is read by
  // one multishot read into slots it gives the kernel, and a pass's writes and the reads that
  // arrived meanwhile take one io_uring_enter(2); asleep, the same call waits for a packet, a
  // ring of its doorbell (its eventfd: parked as in poll) or IDLE_PARK_MS.
  let uh = -1;
  const uio = new Int32Array(UringIo.LENGTH);
  const ugive = new Int32Array(URING_BUFS);
  const ugot = new Int32Array(BATCH);
  const ugotLen = new Uint32Array(BATCH);
  const udone = new Int32Array(BATCH + 1);
  /** Slots in the kernel's buffer ring, and packets a pass read that wait in ugot to be routed. */
  let given = 0;
  let nUring = 0;
  // Which slots this partition's ring holds (layout.ts `held`): marked before the kernel gets
  // them, cleared when they come back (a read's packet, a write's completion).
  const held = new Uint8Array(mem.held);
  const mark = index + 1;
  /** Submit the write batch (already coalesced), top up the buffer ring, take what was read. */
  const uringRun = (waitMs: number, bell: number): number => {
    let ng = 0;
    while (given < URING_BUFS && sp > 0) {
      const s = stack[--sp]!;
      held[s] = mark;
      ugive[ng++] = s;
      given++;
    }
    for (let i = 0; i < nWrite; i++) held[outSlot[i]!] = mark;
    uio[UringIo.NWRITE] = nWrite;
    uio[UringIo.NGIVE] = ng;
    // Packets read earlier and not yet routed stay where they are: none taken, no sleep.
    uio[UringIo.MAXGOT] = nUring > 0 ? 0 : BATCH;
    uio[UringIo.WAIT_MS] = nUring > 0 ? -1 : waitMs;
    uio[UringIo.BELL] = bell;
    const n = uringPass(uh);
    stats[srow + WORKER_STAT.URING_PASSES]!++;
    stats[srow + WORKER_STAT.TUN_WRITES]! += nWrite;
    nWrite = 0;
    if (n < 0) {
      // The ring failed as a whole (cannot happen short of a bug): counted; its slots are lost.
      stats[srow + WORKER_STAT.TUN_READ_ERRORS]!++;
      return 0;
    }
    if (uio[UringIo.WERR]! > 0) stats[srow + WORKER_STAT.TUN_WRITE_ERRORS]! += uio[UringIo.WERR]!;
    if (uio[UringIo.RERR]! > 0) stats[srow + WORKER_STAT.TUN_READ_ERRORS]! += uio[UringIo.RERR]!;
    for (let i = 0; i < uio[UringIo.NDONE]!; i++) {
      held[udone[i]!] = 0;
      recycle(udone[i]!);
    }
    given -= n;
    if (n > 0) nUring = n;
    return n;
  };
  // Adjacent datagrams of one flow go out as one UDP super-packet (coalesce.ts; USO only).
  const coalescer = spec.udpCoalesce ? new UdpCoalescer(H, slotSize - H, BATCH) : null;
  const coalesce = (): void => {
    const supers = coalescer!.supers;
    const joined = coalescer!.joined;
    nWrite = coalescer!.run(pool, outOff, outLen, outSlot, nWrite);
    for (let i = 0; i < coalescer!.nFolded; i++) recycle(coalescer!.folded[i]!);
    stats[srow + WORKER_STAT.UDP_SUPERS]! += coalescer!.supers - supers;
    stats[srow + WORKER_STAT.UDP_JOINED]! += coalescer!.joined - joined;
  };
  const flushWrites = (): void => {
    if (nWrite === 0) return;
    if (coalescer !== null && nWrite > 1) coalesce();
    if (uh >= 0) {
      uringRun(-1, 0);
      return;
    }
    let done = 0;
    while (done < nWrite) {
      // (No view made unless a write stopped part way: no allocation per batch.)
      const r = done === 0 ? writeBatch(fd, pool, outOff, outLen, nWrite, werr) : writeBatch(fd, pool, outOff.subarray(done), outLen.subarray(done), nWrite - done, werr);
      if (r <= 0) {
        stats[srow + WORKER_STAT.TUN_WRITE_ERRORS]! += nWrite - done;
        break;
      }
      done += r;
      if (werr[0]! > 0) stats[srow + WORKER_STAT.TUN_WRITE_ERRORS]! += werr[0]!;
    }
    stats[srow + WORKER_STAT.TUN_WRITES]! += nWrite;
    for (let i = 0; i < nWrite; i++) recycle(outSlot[i]!);
    nWrite = 0;
  };
  const recycle = (slot: number): void => {
    const h = home[slot]!;
    if (h === index) stack[sp++] = slot;
    // To the worker it came from (~slot marks a returned slot); by way of the I/O thread when
    // that ring is full. The free ring holds every slot, so it cannot be full.
    else if (h === P || !outbound[h]!.push(~slot)) free.push(slot);
    // A worker out of slots sleeps on its doorbell alone: ring it (no system call unless it is parked).
    else ring(ctl, spec.workerWakers, h);
  };

  const handle = (entry: number, now: number): void => {
    const slot = entry >>> 2;
    const dir = entry & 3;
    const off = slot * slotSize;
    const ip = off + H;
    // With offloads the vnet header's NEEDS_CSUM flag says the L4 checksum is partial.
    // The slot's room from the IP header on (layout.ts ALG_HEADROOM): a helper may grow it.
    const v = part.translate(pool, ip, lens[slot]! - H, dir, now, H > 0 && (pool[off]! & 1) !== 0, slotSize - H);
    const k = verdictKind(v);
    if (k === VerdictKind.Forward || k === VerdictKind.Pass) {
      if (nWrite === BATCH) flushWrites();
      outOff[nWrite] = off;
      outLen[nWrite] = H + ((pool[ip + 2]! << 8) | pool[ip + 3]!);
      outSlot[nWrite++] = slot;
    } else if (k === VerdictKind.Reply) {
      pool.fill(0, off, ip); // a packet we made: complete checksums, no GSO
      pool.set(part.reply.subarray(0, part.replyLen), ip);
      lens[slot] = H + part.replyLen;
      if (nWrite === BATCH) flushWrites();
      outOff[nWrite] = off;
      outLen[nWrite] = H + part.replyLen;
      outSlot[nWrite++] = slot;
    } else if (k === VerdictKind.Handoff) {
      const to = verdictArg(v);
      if (outbound[to]!.push((slot << 2) | Direction.HairpinIn)) {
        ring(ctl, spec.workerWakers, to);
      } else {
        counters[C.DROPS + DropReason.RingFull]!++;
        recycle(slot);
      }
    } else {
      recycle(slot);
    }
  };

  // Translate entries[0..n) in groups of PF: a prefetch pass over the group first, so the
  // table's cache misses overlap (Partition.prefetch), then each packet.
  const PF = 16;
  const pfOff = new Uint32Array(PF);
  const pfDir = new Uint8Array(PF);
  const handleAll = (n: number, now: number): void => {
    for (let i0 = 0; i0 < n; i0 += PF) {
      const m = Math.min(PF, n - i0);
      if (m > 1) {
        for (let j = 0; j < m; j++) {
          const e = entries[i0 + j]!;
          pfOff[j] = (e >>> 2) * slotSize + H;
          pfDir[j] = e & 3;
        }
        part.prefetch(pool, pfOff, pfDir, m);
      }
      for (let j = 0; j < m; j++) handle(entries[i0 + j]!, now);
    }
  };

  // Run to completion: read this worker's queue into slots of its stack, classify, keep what
  // this partition owns in `entries` (translated below, after a prefetch pass), hand over the
  // rest. Slots a read does not fill go straight back to the stack, so between two reads the
  // stack holds every slot of this worker that is not in flight (restart-safe: see above).
  const qfd = rtc ? spec.writeFds[index]! : -1;
  // This queue is the inside TUN's: with an outside TUN (--outside-tun, read by the I/O thread)
  // that is known; with one TUN for both ways direction is guessed (dispatch.ts, RFC 4787 REQ-7).
  const side = spec.outsideFrom < spec.readFds.length ? Side.Inside : Side.Unknown;
  const offs = new Uint32Array(BATCH);
  const rlens = new Uint32Array(BATCH);
  const slotOf = new Int32Array(BATCH);
  const rang = new Uint8Array(P);
  // When to read the queue and how many at a time (readpolicy.ts).
  const policy = new ReadPolicy(BATCH);
  // Where routeSlot (route.ts) sends each packet this worker read: its own partition's into
  // `entries` (translated after the read; the rings were popped and handled before it), another's over the peer ring, accept-rule passes into
  // this worker's write batch; drops counted (IPv6 ignored, counted apart).
  let nm = 0;
  const sink: RouteSink = {
    toPartition: (s, p, dir) => {
      if (p === index) {
        entries[nm++] = (s << 2) | dir;
        return;
      }
      stats[srow + WORKER_STAT.HANDED_OVER]!++;
      if (outbound[p]!.push((s << 2) | dir)) rang[p] = 1;
      else {
        counters[C.DROPS + DropReason.RingFull]!++;
        recycle(s);
      }
    },
    pass: (s) => {
      counters[C.PASSED]!++;
      if (nWrite === BATCH) flushWrites();
      outOff[nWrite] = s * slotSize;
      outLen[nWrite] = lens[s]!;
      outSlot[nWrite++] = s;
    },
    drop: (s, reason) => {
      if (reason === DropReason.Ipv6) stats[srow + WORKER_STAT.IPV6_IGNORED]!++;
      else counters[C.DROPS + reason]!++;
      recycle(s);
    },
    free: (s) => recycle(s),
  };
  let ownHandled = 0;
  const readOwn = (now: number): number => {
    ownHandled = 0;
    let armed = 0;
    const want = Math.min(policy.want, sp);
    while (armed < want) {
      const s = stack[--sp]!;
      slotOf[armed] = s;
      offs[armed++] = s * slotSize;
    }
    if (armed === 0) {
      policy.noSlots();
      return 0;
    }
    const n = readBatch(qfd, pool, offs, slotSize, rlens, armed);
    if (n < 0) stats[srow + WORKER_STAT.TUN_READ_ERRORS]!++;
    const got = n > 0 ? n : 0;
    // The slots the read left empty go back first (LIFO: the next read takes them again).
    for (let i = armed - 1; i >= got; i--) stack[sp++] = slotOf[i]!;
    policy.afterRead(armed, got);
    if (got === 0) return 0;
    routeRead(got, now);
    return got;
  };
  // The packets of one read (slotOf/rlens[0, got)): classified, handed over or kept in
  // `entries` and translated here (readOwn, and a park in read(2) that brought one).
  const routeRead = (got: number, now: number): void => {
    const d = dispatcher!;
    stats[srow + WORKER_STAT.TUN_READS]! += got;
    stats[srow + WORKER_STAT.READ_BATCHES]!++;
    nm = 0;
    rang.fill(0);
    for (let i = 0; i < got; i++) {
      const s = slotOf[i]!;
      lens[s] = rlens[i]!;
      routeSlot(d, pool, lens, slotSize, H, s, now, side, sink);
    }
    for (let p = 0; p < P; p++) if (rang[p]) ring(ctl, spec.workerWakers, p);
    handleAll(nm, now);
    ownHandled = nm;
  };
  // Entries from a peer: packets to translate, and (as ~slot) this worker's slots coming home.
  const fromPeer = (n: number): number => {
    let k = 0;
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      if (e < 0) stack[sp++] = ~e;
      else entries[k++] = e;
    }
    return k;
  };

  /**
   * The slots a dead predecessor's ring held come back (to their homes: recycle), once the
   * addon says that ring is closed; a ring still open after CLOSE_WAIT_MS keeps them (a later
   * restart may take them). Returns how many came back.
   */
  const takeBackHeld = (): number => {
    const w = CTL_URING + index;
    const t0 = performance.now();
    // The addon stores URING_CLOSED without a futex wake-up: look again every millisecond.
    while (Atomics.load(ctl, w) === URING_OPEN && performance.now() - t0 < CLOSE_WAIT_MS) Atomics.wait(ctl, w, URING_OPEN, 1);
    if (Atomics.load(ctl, w) === URING_OPEN) return 0;
    let n = 0;
    for (let s = 0; s < held.length; s++) {
      if (held[s] !== mark) continue;
      held[s] = 0;
      recycle(s);
      n++;
    }
    return n;
  };

  const waker = spec.workerWakers[index]!;
  if (rtc && spec.ioUring) {
    stats[srow + WORKER_STAT.SLOTS_RECLAIMED]! += takeBackHeld();
    uh = uringOpen(qfd, waker, pool, slotSize, URING_BUFS, { outOff, outLen, outSlot, give: ugive, got: ugot, gotLen: ugotLen, done: udone, ctl, io: uio });
    // Refused (the supervisor probed io_uring at start, so only a bug lands here): the park in read(2) or poll(2) below.
    if (uh < 0) stats[srow + WORKER_STAT.TUN_READ_ERRORS]!++;
    else {
      // From here this partition's ring may hold slots; closing it stores URING_CLOSED.
      Atomics.store(ctl, CTL_URING + index, URING_OPEN);
      uio[UringIo.CLOSED_IDX] = CTL_URING + index;
    }
    uio[UringIo.PARKED_IDX] = CTL_PARKED + index;
    uio[UringIo.BELL_IDX] = CTL_DOORBELL + index;
  }
  // Run to completion parks in read(2) on its own queue where the addon can (tun.c parkRead:
  // x86-64, RWF_NOWAIT reads): one system call per packet fewer than poll(2) + read(2).
  let parkReads = rtc && uh < 0 && spec.parkRead && parkReadInit(qfd);
  // Something here expires by itself and needs the worker to look at the clock while idle:
  // then it parks in poll(2) with IDLE_PARK_MS as the timeout.
  const expiring = (): boolean => dispatcher!.holding > 0 || part.table.expectCount > 0;
  // The wake-up hint (doorbell.ts): this worker's own TUN queue, when it has one to itself.
  // Run to completion makes it the worker's input; without slots to read into it waits for
  // its doorbell (slots come home by a peer's ring) or the timeout.
  const hintFd = rtc ? qfd : spec.outsideFrom >= P ? spec.readFds[index]! : -1; // inside queues only
  let hint = hintFd;
  // Yields to the event loop (comlink's control plane): whenever the shared clock has moved
  // since the last one (it ticks every 5 ms, timer-actor.ts) while busy; when idle, after a
  // park that timed out or was rung with no packet behind it (the supervisor rings the
  // doorbell after posting a control message, supervisor.ts), so a request waits for no timeout.
  let lastYield = clock[0]!;
  let yieldNext = false;
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    const bell = Atomics.load(ctl, CTL_DOORBELL + index);
    const now = clock[0]!;
    let got = 0;
    // A ring popped full may hold more, behind a ring of the doorbell already seen: no sleep.
    let more = false;
    for (let peer = 0; peer < inbound.length; peer++) {
      if (peer === index) continue;
      const popped = inbound[peer]!.pop(entries, BATCH);
      if (popped === BATCH) more = true;
      const n = fromPeer(popped);
      handleAll(n, now);
      got += n;
    }
    const n = rx.pop(entries, BATCH);
    if (n === BATCH) more = true;
    // Depth left behind after this pop: the consumer is the one writer of this gauge.
    stats[srow + WORKER_STAT.RING_DEPTH] = rx.depth();
    handleAll(n, now);
    got += n;
    let reads = 0;
    if (rtc) {
      if (uh >= 0) {
        if (nUring > 0) {
          // What the last pass read (a pass while routing these may read more into ugot).
          const k = nUring;
          for (let i = 0; i < k; i++) {
            slotOf[i] = ugot[i]!;
            rlens[i] = ugotLen[i]!;
            held[ugot[i]!] = 0;
          }
          nUring = 0;
          routeRead(k, now);
          reads = k;
          got += ownHandled;
        }
      } else if (policy.readNext) {
        reads = readOwn(now);
        got += ownHandled;
      }
      // Held fragments expire as time passes, whatever the load (dispatch.ts).
      for (const h of dispatcher!.expired(now)) {
        counters[C.DROPS + DropReason.FragmentOrphan]!++;
        recycle(h);
      }
    }
    if (uh < 0) flushWrites();
    stackHdr[0] = sp;
    const m = nominate.pop(noms, noms.length);
    if (m === noms.length) more = true;
    for (let i = 0; i < m; i++) part.confirmExpired(noms[i]!, now);
    part.expireExpectations(now);
    if (uh >= 0) {
      // One pass: this round's writes go out and the worker sleeps in the same system call
      // until a packet, a ring or IDLE_PARK_MS (not when rung with nothing: first the event loop).
      const worked = got > 0 || reads > 0;
      if (worked) {
        yieldNext = false;
        stats[srow + WORKER_STAT.BATCHES]!++;
        stats[srow + WORKER_STAT.PACKETS]! += got;
      } else if (yieldNext) {
        yieldNext = false;
        lastYield = now;
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      if (coalescer !== null && nWrite > 1) coalesce();
      const n = uringRun(more ? -1 : IDLE_PARK_MS, bell);
      stackHdr[0] = sp;
      if (n === 0 && !worked) {
        if (uio[UringIo.RUNG] === 1) yieldNext = true;
        else if (Atomics.load(ctl, CTL_DOORBELL + index) === bell) {
          // Slept the whole IDLE_PARK_MS: the event loop's turn.
          lastYield = now;
          await new Promise<void>((r) => setImmediate(r));
        }
      } else if (clock[0]! !== lastYield) {
        lastYield = clock[0]!;
        await new Promise<void>((r) => setImmediate(r));
      }
      continue;
    }
    if (got > 0 || reads > 0 || (rtc && policy.readNext)) {
      yieldNext = false; // the ring was for packets
      stats[srow + WORKER_STAT.BATCHES]!++;
      stats[srow + WORKER_STAT.PACKETS]! += got;
      if (now !== lastYield) {
        lastYield = now;
        await new Promise<void>((r) => setImmediate(r));
      }
      continue;
    }
    if (yieldNext) {
      // Rung, and nothing in the rings or the queue: most likely a control message.
      yieldNext = false;
      lastYield = now;
      await new Promise<void>((r) => setImmediate(r));
      continue;
    }
    // Idle: park (doorbell.ts).
    if (parkReads && sp > 0 && !expiring()) {
      // Asleep in read(2) on the queue itself (the addon's parkRead): the packet that wakes it
      // is read by the same call. A ring interrupts it (doorbell.ts), as do the timer actor's
      // idle rings every IDLE_PARK_MS, which stand in for poll's timeout.
      const s = stack[--sp]!;
      const t0 = performance.now();
      const n = parkRead(qfd, pool, s * slotSize, slotSize, ctl, CTL_PARKED + index, CTL_DOORBELL + index, bell, CTL_TID + index);
      if (n > 0) {
        policy.afterParkRead(performance.now() - t0 < QUICK_PARK_MS);
        slotOf[0] = s;
        rlens[0] = n;
        const now2 = clock[0]!;
        routeRead(1, now2);
        stats[srow + WORKER_STAT.BATCHES]!++;
        stats[srow + WORKER_STAT.PACKETS]! += ownHandled;
        yieldNext = false;
      } else {
        stack[sp++] = s;
        policy.afterPark(false, false);
        if (n < 0) {
          // The queue failed (the device went away): count it and wait in poll(2) from now on.
          stats[srow + WORKER_STAT.TUN_READ_ERRORS]!++;
          parkReads = false;
          parkReadDone(qfd);
        } else yieldNext = true;
      }
      continue;
    }
    // In poll(2) for at most IDLE_PARK_MS. Run to completion: its queue readable is this
    // worker's work; without a free slot it listens to its doorbell only (its slots come home
    // by the peers' rings).
    const listen = rtc ? (sp > 0 ? qfd : -1) : hint;
    const t0 = rtc ? performance.now() : 0;
    const r = park(ctl, index, bell, waker, listen, IDLE_PARK_MS);
    if (rtc) {
      // Read after the park when poll saw the queue readable (or was not asked about it).
      const readable = listen < 0 || parkSaw.hintReadable;
      policy.afterPark(readable, readable && performance.now() - t0 < QUICK_PARK_MS);
    }
    if (!rtc && r === PARK_HINT) {
      // A packet is on this worker's TUN queue and the I/O thread, woken with us, is reading
      // it: wait for the hand-off here rather than sleep again (bounded).
      const t1 = performance.now();
      // Yielding in the loop lets the I/O thread (or the load) run first where it shares this
      // CPU, instead of spinning against it (measured: connections/s +1-15 % on two cores).
      while (Atomics.load(ctl, CTL_DOORBELL + index) === bell && performance.now() - t1 < HINT_WAIT_MS) yieldCpu();
      // Nothing came (it was another worker's packet, or the I/O thread is behind): stop
      // listening to the queue until the doorbell wakes this worker again, so a queue that
      // stays readable cannot keep it spinning.
      if (Atomics.load(ctl, CTL_DOORBELL + index) === bell) hint = -1;
    } else if (!rtc && r !== PARK_TIMEOUT) {
      hint = hintFd;
    }
    if (r === PARK_TIMEOUT) {
      lastYield = now;
      await new Promise<void>((r) => setImmediate(r));
    } else if (r === PARK_RUNG) yieldNext = true;
  }
  flushWrites();
  stackHdr[0] = sp;
  if (uh >= 0) uringClose(uh);
  if (parkReads) parkReadDone(qfd);
  port.close();
  return `partition ${index} stopped`;
}
