/**
 * io-thread.ts — the I/O thread (a dedicated worker_threads Worker): reads the TUN in
 * batches straight into pool slots, classifies each packet (core Dispatcher: direction and
 * owning partition) and hands slot indices to the partitions over their rx rings. It sleeps
 * in poll(2) on every queue fd of the TUN (a multi-queue device spreads flows over its
 * queues), the outside TUN's fd when there is one, and an eventfd, so it never spins and
 * stops promptly.
 *
 * Direction (RFC 4787 REQ-7): with an outside TUN (`--outside-tun`) each packet is classified
 * with the side it was read from (Side.Outside: inbound whatever its source); without one,
 * Side.Unknown (the dispatcher guesses from the rules). Everything is written to the inside
 * TUN (the workers' queues, and here the packets an accept rule passes): the kernel routes
 * what a TUN hands it by destination, and `iif <inside tun>` matches no policy rule.
 *
 * It writes: its free-slot stack (private), the rx rings (producer), the I/O counters
 * block and its stats row. Packets for nobody are counted and their slots recycled; packets
 * an `accept` rule passes are written back untranslated; fragments that come before their
 * first fragment keep their slot until released or timed out.
 *
 * Control: a MessagePort message {type:'rules', rulesText, externals} swaps the rule set
 * between batches (checked with receiveMessageOnPort, no event loop needed).
 */
import { workerData, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { C, COUNTER_SLOTS, Dispatcher, DropReason, Side } from '@masq/core';
import { readBatch, writeBatch, pollMany, drainWake, POLL_MANY_WOKEN } from '@masq/tun';
import { Ring } from './ring.js';
import { CTL_STOP, IO_STAT } from './layout.js';
import { ring } from './doorbell.js';
import { routeSlot, type RouteSink } from './route.js';
import { applyThreadPolicy } from './sched.js';
import { pinsOf, planOf, rulesOf, type GatewaySpec } from './spec.js';

interface IoInit {
  spec: GatewaySpec;
  port: MessagePort;
}

const BATCH = 256;

function main(init: IoInit): void {
  const { spec, port } = init;
  // SCHED_BATCH by default (sched.ts): a packet's arrival does not preempt its sender.
  applyThreadPolicy(spec.sched.io, 'I/O thread');
  const mem = spec.memory;
  const P = spec.config.partitions;
  const pool = new Uint8Array(mem.pool);
  const lens = new Int32Array(mem.lens);
  const ctl = new Int32Array(mem.control);
  const clock = new Float64Array(mem.clock); // read with plain loads: see the clock in layout.ts
  const stats = new Float64Array(mem.ioStats);
  const srow = 0;
  const counters = new Float64Array(mem.ioCounters, 0, COUNTER_SLOTS);
  const rx = mem.rx.map((b) => new Ring(b));
  const free = mem.free.map((b) => new Ring(b));
  const dispatcher = new Dispatcher(rulesOf(spec.rulesText), spec.config.externals, planOf(spec), P, spec.config.fragmentHold, spec.config.timeouts.fragment, pinsOf(spec));
  const slotSize = mem.slotSize;
  // Every queue of a multi-queue TUN must be read: the kernel spreads flows over them.
  const readFds = Int32Array.from(spec.readFds);
  const nq = readFds.length;
  // The side of each read fd: with an outside TUN, its fd is Outside and the rest Inside.
  const sides = new Uint8Array(nq).fill(spec.outsideFrom < nq ? Side.Inside : Side.Unknown);
  sides.fill(Side.Outside, spec.outsideFrom);
  const H = spec.vnetHdr;
  const wfd = spec.writeFds[0]!;

  // Free-slot stack: the slots of its home (layout.ts slotHomes: all of them unless the
  // workers read their own queues) start here; any slot a worker sends back lands here too.
  const stack = new Int32Array(mem.slots);
  let sp = 0;
  for (let i = spec.slotHomes[P + 1]! - 1; i >= spec.slotHomes[P]!; i--) stack[sp++] = i;
  const tmp = new Int32Array(4096);
  const offs = new Uint32Array(BATCH);
  const rlens = new Uint32Array(BATCH);
  const slotOf = new Int32Array(BATCH);
  let armed = 0;
  let readWant = 1;
  // Passed packets of one read: up to BATCH read, plus every held fragment a read can release.
  const passCap = BATCH + spec.config.fragmentHold;
  const passOff = new Uint32Array(passCap);
  const passLen = new Uint32Array(passCap);
  const passSlot = new Int32Array(passCap);
  const werr = new Uint32Array(2);
  const rang = new Uint8Array(P);

  const reclaim = (): void => {
    for (let p = 0; p < P; p++) {
      let n: number;
      while ((n = free[p]!.pop(tmp, tmp.length)) > 0) for (let i = 0; i < n; i++) stack[sp++] = tmp[i]!;
    }
  };
  // Where routeSlot (route.ts) sends each packet read: its partition's rx ring (the worker is
  // rung after the read), accept-rule passes into this read's pass batch, drops counted (IPv6
  // ignored, counted apart); freed slots back on the stack.
  let np = 0;
  const sink: RouteSink = {
    toPartition: (s, p, dir) => {
      if (rx[p]!.push((s << 2) | dir)) rang[p] = 1;
      else {
        counters[C.DROPS + DropReason.RingFull]!++;
        stack[sp++] = s;
      }
    },
    pass: (s) => {
      counters[C.PASSED]!++;
      passOff[np] = s * slotSize;
      passLen[np] = lens[s]!;
      passSlot[np++] = s;
    },
    drop: (s, reason) => {
      // IPv6 is not a drop of ours to count by reason: it is ignored and counted apart.
      if (reason === DropReason.Ipv6) stats[srow + IO_STAT.IPV6_IGNORED]!++;
      else counters[C.DROPS + reason]!++;
      stack[sp++] = s;
    },
    free: (s) => {
      stack[sp++] = s;
    },
  };

  while (Atomics.load(ctl, CTL_STOP) === 0) {
    let msg;
    while ((msg = receiveMessageOnPort(port)) !== undefined) {
      const m = msg.message as { type: string; rulesText?: string; externals?: number[] };
      if (m.type === 'rules' && m.rulesText !== undefined) dispatcher.setRules(rulesOf(m.rulesText), m.externals);
    }
    const pr = pollMany(readFds, nq, spec.ioWaker, 100);
    if (pr & POLL_MANY_WOKEN) drainWake(spec.ioWaker);
    if ((pr & ~POLL_MANY_WOKEN) === 0) {
      reclaim();
      const now = clock[0]!;
      for (const h of dispatcher.expired(now)) {
        counters[C.DROPS + DropReason.FragmentOrphan]!++;
        stack[sp++] = h;
      }
      continue;
    }
    for (let q = 0; q < nq; q++) {
      if ((pr & (1 << q)) === 0) continue;
      const fd = readFds[q]!;
      // Read this queue while it has packets and the pool has slots, `readWant` packets at a
      // time: it adapts to the load. A read that gets all it asked for doubles it (up to
      // BATCH) and, below BATCH, returns to poll(2), which answers at once while packets
      // wait; a read that gets fewer (the queue ran dry: EAGAIN) sets it to what came. At low
      // rates that is one packet per wake-up in one read, with no read that finds the queue
      // empty (poll + read per packet instead of poll + read + empty read); under load the
      // reads are batches of up to BATCH without polls between them.
      for (;;) {
        reclaim();
        // Arm slots for the read: slotOf[0..armed) with their offsets. The ones a read does
        // not fill stay armed for the next (moved to the front below), so reading one packet
        // costs one slot's bookkeeping, not BATCH.
        while (armed < BATCH && sp > 0) {
          const s = stack[--sp]!;
          slotOf[armed] = s;
          offs[armed++] = s * slotSize;
        }
        const want = Math.min(readWant, armed);
        if (want === 0) break;
        const n = readBatch(fd, pool, offs, slotSize, rlens, want);
        if (n < 0) {
          stats[srow + IO_STAT.TUN_READ_ERRORS]!++;
          break;
        }
        if (n === 0) {
          readWant = 1;
          break;
        }
        stats[srow + IO_STAT.TUN_READS]! += n;
        // slotOf[0..n) now hold packets and leave the armed set (after the loop below).
        armed -= n;
        // (pool exhaustion shows as ring depth: slots are all in the workers' rings)
        stats[srow + IO_STAT.BATCH_SIZE_SUM]! += n;
        stats[srow + IO_STAT.BATCH_COUNT]!++;
        const now = clock[0]!;
        np = 0;
        rang.fill(0);
        for (let i = 0; i < n; i++) {
          const s = slotOf[i]!;
          lens[s] = rlens[i]!;
          routeSlot(dispatcher, pool, lens, slotSize, H, s, now, sides[q]! as Side, sink);
        }
        // Held fragments expire as time passes, not only when the TUN is idle: under
        // continuous traffic this is the only place they are collected.
        for (const h of dispatcher.expired(now)) {
          counters[C.DROPS + DropReason.FragmentOrphan]!++;
          stack[sp++] = h;
        }
        // Wake the workers first: the bookkeeping below can wait.
        for (let p = 0; p < P; p++) {
          if (rang[p]) {
            // The ring's tail store happened before this add: a woken worker sees the entries.
            ring(ctl, spec.workerWakers, p);
          }
        }
        if (np > 0) {
          const w = writeBatch(wfd, pool, passOff, passLen, np, werr);
          if (w < 0 || werr[0]! > 0) stats[srow + IO_STAT.TUN_WRITE_ERRORS]! += w < 0 ? np : werr[0]!;
          stats[srow + IO_STAT.TUN_WRITES]! += np;
          for (let i = 0; i < np; i++) stack[sp++] = passSlot[i]!;
        }
        slotOf.copyWithin(0, n, n + armed);
        offs.copyWithin(0, n, n + armed);
        if (n < want) {
          readWant = Math.max(1, n);
          break;
        }
        if (readWant < BATCH) {
          readWant = Math.min(BATCH, readWant * 2);
          break;
        }
      }
    }
  }
  port.close();
}

main(workerData as IoInit);
