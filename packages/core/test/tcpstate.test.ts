/**
 * tcpstate.test.ts — the fast path's table form of the NAT's TCP state machine (tcpStep) is
 * the same function as tcpNext for every state, every flag byte and both directions, and a
 * few transitions pinned by name (RFC 7857 §2.1-2.2, RFC 5382 REQ-2).
 */
import test from 'ava';
import { TcpState, tcpNext, tcpStep } from '../src/tcpstate.js';

test('tcpStep agrees with tcpNext everywhere: 8 states × 256 flag bytes × 2 directions', (t) => {
  let n = 0;
  for (let s = 0; s < 8; s++) {
    for (let f = 0; f < 256; f++) {
      for (let d = 0; d < 2; d++) {
        const want = tcpNext(s, f, d);
        if (tcpStep(s, f, d) !== want) t.fail(`state ${s} flags 0x${f.toString(16)} dir ${d}: step ${tcpStep(s, f, d)}, next ${want}`);
        n++;
      }
    }
  }
  t.is(n, 4096);
});

test('the transitions the timers hang on, by table', (t) => {
  const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04, PSH = 0x08, ECE = 0x40;
  t.is(tcpStep(TcpState.None, SYN, 0), TcpState.SynOut);
  t.is(tcpStep(TcpState.SynOut, SYN | ACK, 1), TcpState.Established);
  t.is(tcpStep(TcpState.SynOut, SYN, 1), TcpState.Established, 'simultaneous open (RFC 5382 REQ-2)');
  t.is(tcpStep(TcpState.Established, FIN | ACK | PSH, 0), TcpState.FinOut);
  t.is(tcpStep(TcpState.FinOut, FIN | ACK, 1), TcpState.Closing);
  t.is(tcpStep(TcpState.Established, RST | ACK, 1), TcpState.Reset);
  t.is(tcpStep(TcpState.Reset, ACK | ECE, 0), TcpState.Established, 'an ACK after a RST: the connection lives (RFC 7857 §2.2); flags above ACK do not matter');
  t.is(tcpStep(TcpState.Closing, SYN, 0), TcpState.SynOut, 'a new connection on a closed five-tuple');
});
