/**
 * readpolicy.ts — when a run-to-completion worker reads its TUN queue, and how many packets at a
 * time (partition-actor.ts readOwn and its park).
 *
 * Owns: the decision "read again at once, and how many" against "wait in poll(2) until the
 * queue is readable". Every system call costs ~1.1 µs on this kind of VM (PVM guest; a C NAT's
 * whole packet is one read and one write), so the policy avoids reads that only find the queue
 * empty (EAGAIN):
 *  - After a park that slept, one packet is read and the worker parks again: at one packet at
 *    a time a packet costs poll, read, write.
 *  - A park that returned at once (the queue was already readable) may mean packets are queued,
 *    or only that the reply to what was just written is back. Now and then the worker probes:
 *    it reads two. Two read means a backlog: it reads again at once, twice as many each time
 *    (up to `max`), until a read comes back short. A probe that finds one backs off: the next
 *    probe comes after twice as many quick parks (up to 64), so a steady request/response
 *    exchange pays at most one empty read in 64 packets, and a flood is read in batches.
 * A worker that parks in read(2) instead (the addon's parkRead) has its packet in hand when
 * the park returns: afterParkRead(quick) then, and the same probes follow quick parks.
 * Contract: afterRead(armed, got) after every read of `armed` slots that returned `got`
 * packets (armed ≥ 1); afterPark(readable, quick) after every park in poll(2); `readNext` and `want` are
 * then what to do. Pure state, no system calls, no allocation.
 */

/** Quick parks between two probes, at most. */
export const PROBE_BACKOFF_MAX = 64;

export class ReadPolicy {
  /** Read the queue on the next turn (else park until poll(2) says it is readable). */
  readNext = true;
  /** How many packets to read then. */
  want = 1;
  private probeEvery = 1;
  private quickParks = 0;

  constructor(private readonly max: number) {}

  afterRead(armed: number, got: number): void {
    if (armed >= 2 && got === armed) {
      this.want = Math.min(this.max, armed * 2);
      this.readNext = true;
      this.probeEvery = 1;
    } else {
      if (armed === 2 && got < 2) this.probeEvery = Math.min(PROBE_BACKOFF_MAX, this.probeEvery * 2);
      this.want = 1;
      this.readNext = false;
    }
  }

  /** No slot to read into: wait for the doorbell (slots come home by a peer's ring). */
  noSlots(): void {
    this.readNext = false;
  }

  /**
   * After a park in read(2) (the addon's parkRead) that returned a packet; `quick`: it did not
   * sleep (the packet was already queued). The packet is in hand: no read follows, unless a
   * probe is due after quick parks, as after afterPark(true, true).
   */
  afterParkRead(quick: boolean): void {
    this.readNext = false;
    if (quick) {
      if (++this.quickParks >= this.probeEvery) {
        this.quickParks = 0;
        this.want = 2;
        this.readNext = true;
      }
    } else this.quickParks = 0;
  }

  /**
   * After a park: `readable` = poll(2) saw the queue readable (or the queue was not polled);
   * `quick` = the park returned without sleeping.
   */
  afterPark(readable: boolean, quick: boolean): void {
    this.readNext = readable;
    if (readable && quick) {
      if (++this.quickParks >= this.probeEvery) {
        this.quickParks = 0;
        this.want = 2;
      }
    } else this.quickParks = 0;
  }
}
