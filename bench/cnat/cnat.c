/*
 * cnat.c — a minimal single-threaded NAPT on a Linux TUN device: the C baseline that
 * `pnpm bench:e2e` measures masq against (modes `cnat` and `cnat-offload`). A baseline, not a
 * product: the least a userspace NAT on a TUN must do, done plainly.
 *
 *     cnat TUN INSIDE_NET/LEN EXTERNAL [--offload] [--seconds N]
 *
 * What it is: one thread, one blocking read(2) and one write(2) per packet on one TUN queue
 * (IFF_TUN | IFF_NO_PI). A packet from INSIDE_NET gets the source address EXTERNAL and an
 * external port (ICMP echo: identifier) from a per-protocol table of 65536 mappings — the inside
 * port itself when it is free, else the next free one from 1024 up — so the mapping is
 * endpoint-independent (RFC 4787 REQ-1). A packet to EXTERNAL is mapped back through that table
 * (index = destination port); an inside (protocol, address, port) finds its mapping again
 * through a small open-addressing hash. Checksums are updated incrementally (RFC 1624, eqn. 3):
 * the IPv4 header's; TCP's and UDP's for the address (pseudo-header) and the port, a zero UDP
 * checksum staying zero and a computed zero sent as 0xffff (RFC 768); ICMP echo's for the
 * identifier.
 *
 * With --offload the TUN is opened with IFF_VNET_HDR and TUNSETOFFLOAD TUN_F_CSUM | TUN_F_TSO4 |
 * TUN_F_USO4 (the kernel takes USO only for both IP versions, so with TUN_F_USO6; IPv6 is
 * dropped anyway; without USO where the kernel refuses it, Linux < 6.2): every packet comes
 * with a 10-byte struct virtio_net_hdr, which is written back unchanged (a TCP or UDP
 * super-packet of up to 64 KiB stays one packet; the kernel segments it on the way out). When
 * the header says VIRTIO_NET_HDR_F_NEEDS_CSUM, the L4 checksum field holds the pseudo-header sum,
 * not complemented, and the kernel finishes the sum from csum_start: only the address change
 * goes into that field (with the opposite sign), the port lies in the range the kernel sums.
 *
 * What it deliberately leaves out: mappings never expire (a full port table drops new flows);
 * no filtering beyond "a mapping exists" (no TCP state, no per-remote filter); ICMP errors are
 * not translated and non-first fragments are dropped; no hairpinning, no ALGs, no port
 * forwards, no IPv6; one queue, no batching, no threads.
 *
 * Bounded: exits after --seconds (default 600, alarm(2)), when its parent dies
 * (PR_SET_PDEATHSIG) and on SIGTERM/SIGINT, writing its counters to stderr. Writes "ready" to
 * stdout once the TUN is open.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

/* struct virtio_net_hdr (include/uapi/linux/virtio_net.h), without the GSO fields we carry as is. */
#define VNET_HDR_LEN 10
#define VNET_F_NEEDS_CSUM 1

enum { P_TCP, P_UDP, P_ICMP, NPROTO };
static const char *const DROP_NAMES[] = {"not_ipv4", "bad_header", "fragment", "protocol", "icmp_type", "not_ours", "no_mapping", "ports_full", "short"};
enum { D_NOT_IPV4, D_BAD_HEADER, D_FRAGMENT, D_PROTOCOL, D_ICMP_TYPE, D_NOT_OURS, D_NO_MAPPING, D_PORTS_FULL, D_SHORT, NDROP };

struct mapping {
  uint32_t in_addr;
  uint16_t in_port;
  uint8_t used;
};
static struct mapping by_ext[NPROTO][65536];

#define HASH_BITS 18 /* 262144 slots for at most 3 x 64512 mappings: load <= 0.74 */
struct slot {
  uint64_t key; /* 0 = empty; else 1 << 63 | proto << 48 | addr << 16 | port */
  uint16_t ext;
};
static struct slot by_in[1u << HASH_BITS];
static uint32_t next_port[NPROTO] = {1024, 1024, 1024};

static uint64_t n_rx, n_tx, n_write_err, n_out, n_in, n_partial, n_drop[NDROP];
static uint32_t inside_net, inside_mask, external;

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

static inline uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}
/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for a 16-bit and a 32-bit field. */
static inline uint16_t csum16(uint16_t hc, uint16_t m, uint16_t m2) { return (uint16_t)~fold((uint16_t)~hc + (uint16_t)~m + (uint32_t)m2); }
static inline uint16_t csum32(uint16_t hc, uint32_t m, uint32_t m2) {
  return (uint16_t)~fold((uint32_t)(uint16_t)~hc + (uint16_t)~(m >> 16) + (uint16_t)~m + (m2 >> 16) + (m2 & 0xffff));
}

static inline uint32_t slot_of(uint64_t key) { return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - HASH_BITS)); }

/* The external port of (proto, addr, port), made on first use; -1 when the table is full. */
static int map_out(int pi, uint32_t addr, uint16_t port) {
  uint64_t key = 1ull << 63 | (uint64_t)pi << 48 | (uint64_t)addr << 16 | port;
  uint32_t i = slot_of(key);
  for (; by_in[i].key != 0; i = (i + 1) & ((1u << HASH_BITS) - 1))
    if (by_in[i].key == key) return by_in[i].ext;
  uint32_t ext = port;
  if (ext < 1024 || by_ext[pi][ext].used) {
    uint32_t tries = 0;
    for (ext = next_port[pi]; by_ext[pi][ext].used; ext = ext == 65535 ? 1024 : ext + 1)
      if (++tries > 64512) return -1;
    next_port[pi] = ext == 65535 ? 1024 : ext + 1;
  }
  by_ext[pi][ext] = (struct mapping){addr, port, 1};
  by_in[i] = (struct slot){key, (uint16_t)ext};
  return (int)ext;
}

/* Translate the IPv4 packet p[0..n) in place; 0 to forward it, else a drop reason + 1. */
static int nat(uint8_t *p, size_t n, int partial) {
  if (n < 20 || p[0] >> 4 != 4) return D_NOT_IPV4 + 1;
  size_t ihl = (size_t)(p[0] & 15) * 4, tot = get16(p + 2);
  if (ihl < 20 || tot < ihl || tot > n) return D_BAD_HEADER + 1;
  if (get16(p + 6) & 0x1fff) return D_FRAGMENT + 1;
  uint8_t *l4 = p + ihl;
  size_t l4len = tot - ihl;
  int pi;
  size_t csoff;
  switch (p[9]) {
    case IPPROTO_TCP: pi = P_TCP, csoff = 16; if (l4len < 20) return D_SHORT + 1; break;
    case IPPROTO_UDP: pi = P_UDP, csoff = 6; if (l4len < 8) return D_SHORT + 1; break;
    case IPPROTO_ICMP: pi = P_ICMP, csoff = 2; if (l4len < 8) return D_SHORT + 1; break;
    default: return D_PROTOCOL + 1;
  }
  uint32_t src = get32(p + 12), dst = get32(p + 16);
  uint8_t *addrp, *portp;
  uint32_t addr2;
  uint16_t port2;
  if ((src & inside_mask) == inside_net) {
    if (pi == P_ICMP && l4[0] != 8) return D_ICMP_TYPE + 1; /* echo request only */
    addrp = p + 12, portp = pi == P_ICMP ? l4 + 4 : l4;
    int ext = map_out(pi, src, get16(portp));
    if (ext < 0) return D_PORTS_FULL + 1;
    addr2 = external, port2 = (uint16_t)ext;
    n_out++;
  } else if (dst == external) {
    if (pi == P_ICMP && l4[0] != 0) return D_ICMP_TYPE + 1; /* echo reply only */
    addrp = p + 16, portp = pi == P_ICMP ? l4 + 4 : l4 + 2;
    const struct mapping *m = &by_ext[pi][get16(portp)];
    if (!m->used) return D_NO_MAPPING + 1;
    addr2 = m->in_addr, port2 = m->in_port;
    n_in++;
  } else {
    return D_NOT_OURS + 1;
  }
  uint32_t addr = get32(addrp);
  uint16_t port = get16(portp), cs = get16(l4 + csoff);
  put16(p + 10, csum32(get16(p + 10), addr, addr2));
  put32(addrp, addr2);
  put16(portp, port2);
  if (partial) {
    /* The field is the pseudo-header sum S, not ~S: S' = ~csum(~S), and the port is summed later. */
    if (pi != P_ICMP) put16(l4 + csoff, (uint16_t)~csum32((uint16_t)~cs, addr, addr2));
    n_partial++;
  } else if (pi == P_ICMP) {
    put16(l4 + csoff, csum16(cs, port, port2));
  } else if (!(pi == P_UDP && cs == 0)) {
    cs = csum16(csum32(cs, addr, addr2), port, port2);
    put16(l4 + csoff, pi == P_UDP && cs == 0 ? 0xffff : cs);
  }
  return 0;
}

static char *fmt_u64(char *o, uint64_t v) {
  char tmp[24];
  int k = 0;
  do tmp[k++] = (char)('0' + v % 10), v /= 10; while (v);
  while (k) *o++ = tmp[--k];
  return o;
}
static char *fmt_s(char *o, const char *s) {
  while (*s) *o++ = *s++;
  return o;
}

/* Counters to stderr and exit; async-signal-safe (write(2) and _exit only). */
static void report_and_exit(int sig) {
  char line[512], *o = line;
  o = fmt_s(o, "cnat: rx "), o = fmt_u64(o, n_rx), o = fmt_s(o, " tx "), o = fmt_u64(o, n_tx);
  o = fmt_s(o, " out "), o = fmt_u64(o, n_out), o = fmt_s(o, " in "), o = fmt_u64(o, n_in);
  o = fmt_s(o, " partial_csum "), o = fmt_u64(o, n_partial), o = fmt_s(o, " write_errors "), o = fmt_u64(o, n_write_err);
  for (int d = 0; d < NDROP; d++)
    if (n_drop[d]) o = fmt_s(o, " drop_"), o = fmt_s(o, DROP_NAMES[d]), o = fmt_s(o, " "), o = fmt_u64(o, n_drop[d]);
  *o++ = '\n';
  ssize_t w = write(2, line, (size_t)(o - line));
  (void)w;
  (void)sig;
  _exit(0);
}

/*
 * --uring: the same NAT with its I/O through one io_uring (Linux 6.7+) instead of read(2) and
 * write(2) per packet. One multishot read (IORING_OP_READ_MULTISHOT) on the TUN fills buffers
 * from a provided-buffer ring; each translated packet goes back as an IORING_OP_WRITE; every
 * write of a pass is submitted, and the next packets waited for, by one io_uring_enter(2).
 * With IORING_SETUP_DEFER_TASKRUN the reads run in that call, so a burst of packets costs one
 * system call rather than two per packet. Raw system calls: no liburing needed.
 */
#ifndef IORING_OP_READ_MULTISHOT
#define IORING_OP_READ_MULTISHOT 49 /* Linux 6.7; the 6.1 uapi headers stop at IORING_OP_SENDMSG_ZC */
#endif
#define U_NBUF 64u /* provided buffers (a power of two) */
#define U_WRITE (1ull << 32)

struct uring {
  int fd;
  unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  unsigned pending; /* SQEs queued since the last io_uring_enter */
  struct io_uring_buf_ring *br;
  uint8_t *bufs;
  size_t bufsz;
};

static struct io_uring_sqe *u_sqe(struct uring *u) {
  unsigned t = *u->sq_tail + u->pending;
  unsigned i = t & *u->sq_mask;
  u->sq_array[i] = i;
  u->pending++;
  struct io_uring_sqe *e = &u->sqes[i];
  memset(e, 0, sizeof *e);
  return e;
}

static void u_give(struct uring *u, unsigned bid) {
  unsigned short tail = u->br->tail;
  struct io_uring_buf *b = &u->br->bufs[tail & (U_NBUF - 1)];
  b->addr = (uint64_t)(uintptr_t)(u->bufs + (size_t)bid * u->bufsz);
  b->len = (uint32_t)u->bufsz;
  b->bid = (uint16_t)bid;
  __atomic_store_n(&u->br->tail, (unsigned short)(tail + 1), __ATOMIC_RELEASE);
}

static void u_arm_read(struct uring *u, int tun) {
  struct io_uring_sqe *e = u_sqe(u);
  e->opcode = IORING_OP_READ_MULTISHOT;
  e->fd = tun;
  e->flags = IOSQE_BUFFER_SELECT;
  e->buf_group = 0;
  e->user_data = 0;
}

static int u_setup(struct uring *u, size_t bufsz) {
  struct io_uring_params pr;
  memset(&pr, 0, sizeof pr);
  pr.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  u->fd = (int)syscall(SYS_io_uring_setup, 256, &pr);
  if (u->fd < 0) return perror("cnat: io_uring_setup"), -1;
  if (!(pr.features & IORING_FEAT_SINGLE_MMAP)) return fprintf(stderr, "cnat: io_uring without IORING_FEAT_SINGLE_MMAP\n"), -1;
  size_t sqsz = pr.sq_off.array + pr.sq_entries * sizeof(unsigned), cqsz = pr.cq_off.cqes + pr.cq_entries * sizeof(struct io_uring_cqe);
  size_t rsz = sqsz > cqsz ? sqsz : cqsz;
  uint8_t *r = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
  if (r == MAP_FAILED) return perror("cnat: mmap ring"), -1;
  u->sqes = mmap(NULL, pr.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
  if (u->sqes == MAP_FAILED) return perror("cnat: mmap sqes"), -1;
  u->sq_tail = (unsigned *)(r + pr.sq_off.tail), u->sq_mask = (unsigned *)(r + pr.sq_off.ring_mask), u->sq_array = (unsigned *)(r + pr.sq_off.array);
  u->cq_head = (unsigned *)(r + pr.cq_off.head), u->cq_tail = (unsigned *)(r + pr.cq_off.tail), u->cq_mask = (unsigned *)(r + pr.cq_off.ring_mask);
  u->cqes = (struct io_uring_cqe *)(r + pr.cq_off.cqes);
  u->pending = 0;
  u->bufsz = bufsz;
  u->br = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  u->bufs = mmap(NULL, U_NBUF * bufsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (u->br == MAP_FAILED || u->bufs == MAP_FAILED) return perror("cnat: mmap buffers"), -1;
  memset(u->br, 0, 4096);
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)u->br;
  reg.ring_entries = U_NBUF;
  reg.bgid = 0;
  if (syscall(SYS_io_uring_register, u->fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) return perror("cnat: IORING_REGISTER_PBUF_RING"), -1;
  for (unsigned b = 0; b < U_NBUF; b++) u_give(u, b);
  return 0;
}

static void run_uring(int tun, size_t hl) {
  static struct uring u;
  if (u_setup(&u, VNET_HDR_LEN + 65536) < 0) exit(1);
  u_arm_read(&u, tun);
  for (;;) {
    unsigned n = u.pending;
    if (n) __atomic_store_n(u.sq_tail, *u.sq_tail + n, __ATOMIC_RELEASE);
    u.pending = 0;
    long r = syscall(SYS_io_uring_enter, u.fd, n, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) {
      perror("cnat: io_uring_enter");
      report_and_exit(0);
    }
    unsigned head = *u.cq_head, tail = __atomic_load_n(u.cq_tail, __ATOMIC_ACQUIRE);
    int rearm = 0;
    for (; head != tail; head++) {
      const struct io_uring_cqe *c = &u.cqes[head & *u.cq_mask];
      if (c->user_data & U_WRITE) {
        if (c->res >= 0) n_tx++;
        else n_write_err++;
        u_give(&u, (unsigned)(c->user_data & 0xffff));
        continue;
      }
      if (!(c->flags & IORING_CQE_F_MORE)) rearm = 1;
      if (c->res < 0) {
        if (c->res != -ENOBUFS) {
          errno = -c->res;
          perror("cnat: multishot read");
          report_and_exit(0);
        }
        continue;
      }
      unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
      uint8_t *buf = u.bufs + (size_t)bid * u.bufsz;
      size_t len = (size_t)c->res;
      n_rx++;
      int d;
      if (len < hl) d = D_SHORT + 1;
      else d = nat(buf + hl, len - hl, hl != 0 && (buf[0] & VNET_F_NEEDS_CSUM) != 0);
      if (d != 0) {
        n_drop[d - 1]++;
        u_give(&u, bid);
        continue;
      }
      struct io_uring_sqe *e = u_sqe(&u);
      e->opcode = IORING_OP_WRITE;
      e->fd = tun;
      e->addr = (uint64_t)(uintptr_t)buf;
      e->len = (uint32_t)len;
      e->user_data = U_WRITE | bid;
    }
    __atomic_store_n(u.cq_head, head, __ATOMIC_RELEASE);
    if (rearm) u_arm_read(&u, tun);
  }
}

static void usage(void) {
  fprintf(stderr, "usage: cnat TUN INSIDE_NET/LEN EXTERNAL [--offload] [--uring] [--seconds N]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 4) usage();
  const char *tun = argv[1];
  int offload = 0, uring = 0;
  long seconds = 600;
  for (int i = 4; i < argc; i++) {
    if (strcmp(argv[i], "--offload") == 0) offload = 1;
    else if (strcmp(argv[i], "--uring") == 0) uring = 1;
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = strtol(argv[++i], NULL, 10);
    else usage();
  }
  char net[32];
  const char *slash = strchr(argv[2], '/');
  struct in_addr a;
  if (slash == NULL || (size_t)(slash - argv[2]) >= sizeof net || strlen(tun) >= IFNAMSIZ) usage();
  memcpy(net, argv[2], (size_t)(slash - argv[2]));
  net[slash - argv[2]] = 0;
  long len = strtol(slash + 1, NULL, 10);
  if (inet_pton(AF_INET, net, &a) != 1 || len < 1 || len > 32 || seconds < 1) usage();
  inside_mask = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
  inside_net = ntohl(a.s_addr) & inside_mask;
  if (inet_pton(AF_INET, argv[3], &a) != 1) usage();
  external = ntohl(a.s_addr);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = report_and_exit;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGALRM, &sa, NULL);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) return 1;
  alarm((unsigned)seconds);

  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return perror("cnat: /dev/net/tun"), 1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, tun, strlen(tun));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) return perror("cnat: TUNSETIFF"), 1;
  size_t hl = 0;
  if (offload) {
    int sz = VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) return perror("cnat: TUNSETVNETHDRSZ"), 1;
    unsigned long off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_USO4 | TUN_F_USO6;
    if (ioctl(fd, TUNSETOFFLOAD, off) < 0) {
      off = TUN_F_CSUM | TUN_F_TSO4;
      if (ioctl(fd, TUNSETOFFLOAD, off) < 0) return perror("cnat: TUNSETOFFLOAD"), 1;
      fprintf(stderr, "cnat: the kernel refused TUN_F_USO4; offloads: csum, tso4\n");
    }
    hl = VNET_HDR_LEN;
  }
  printf("ready\n");
  fflush(stdout);

  if (uring) run_uring(fd, hl);
  static uint8_t buf[VNET_HDR_LEN + 65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("cnat: read");
      report_and_exit(0);
    }
    n_rx++;
    if ((size_t)n < hl) {
      n_drop[D_SHORT]++;
      continue;
    }
    int partial = hl != 0 && (buf[0] & VNET_F_NEEDS_CSUM) != 0;
    int d = nat(buf + hl, (size_t)n - hl, partial);
    if (d != 0) {
      n_drop[d - 1]++;
      continue;
    }
    if (write(fd, buf, (size_t)n) == n) n_tx++;
    else n_write_err++;
  }
}
