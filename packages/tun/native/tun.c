/*
 * tun.c — masq_tun, the N-API binding to Linux TUN devices (drivers/net/tun.c).
 *
 * Owns: every system call masq makes on /dev/net/tun, on the eventfd that wakes a blocked
 * I/O thread or a translation worker, and the SIOC* ioctls that configure the interface;
 * plus two scheduler calls for the packet threads: sched_yield(2) for a worker waiting on a
 * hand-off (yieldCpu) and sched_setscheduler(2) on the calling thread (setThreadPolicy).
 * Nothing else.
 *
 * Contract:
 *  - All functions are synchronous and run on the calling JS thread (the I/O thread calls
 *    readBatch/writeBatch/poll; the supervisor calls the rest).
 *  - Control calls (open, ioctls, eventfd, wake, close, poll) THROW on failure: an Error whose
 *    .code is the errno name ('EPERM'), .errno the negative errno (as in Node's own system
 *    errors), .syscall the call that failed, a message that says what to do about it, and
 *    .detail, the same message without the advice (for callers that can advise better).
 *  - The hot-path calls readBatch and writeBatch never throw and never allocate: they return a
 *    count >= 0 or a negative errno. Bad arguments (wrong array type, a slot that does not fit
 *    in the buffer, a count beyond the arrays) give -EINVAL before any byte is read or written.
 *  - Buffers may be backed by an ArrayBuffer or a SharedArrayBuffer: napi_get_typedarray_info
 *    returns the backing store's address plus the view's byteOffset for both on Node 20.
 *  - Every fd is opened O_NONBLOCK | O_CLOEXEC; parkReadInit makes a worker's own queue fd
 *    blocking for parkRead, and readBatch never blocks either way (preadv2 RWF_NOWAIT). TUN
 *    devices are IFF_TUN | IFF_NO_PI: each read or write is exactly one IP packet (preceded by
 *    a struct virtio_net_hdr with IFF_VNET_HDR).
 *  - parkRead/wakeThread use the real-time signal SIGRTMIN+8 (a handler installed by the first
 *    parkReadInit; SA_RESTART, so a stray signal restarts what it interrupts).
 */
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/if_tun.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <signal.h>
#include <ucontext.h>

#define TUN_PATH "/dev/net/tun"
#define CAP_HINT "run as root or grant CAP_NET_ADMIN, e.g. setcap cap_net_admin+ep $(which node)"

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static const char *errno_name(int err) {
  const char *n = strerrorname_np(err);
  return n ? n : "EUNKNOWN";
}

/* Throws Error(message) with .code = errno name, .errno = -err, .syscall. Returns NULL so that
 * callers can `return throw_errno(...)`. The message is "<what>: <strerror> (<CODE>)" followed
 * by ": <hint>" when a hint is given. */
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *hint,
                              const char *fmt, ...) {
  char what[256];
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (hint && hint[0])
    snprintf(msg, sizeof msg, "%s: %s (%s): %s", what, strerror(err), errno_name(err), hint);
  else
    snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(err), errno_name(err));

  napi_value code, message, error, errno_v, syscall_v, detail_v;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok) {
    napi_throw_error(env, errno_name(err), msg);
    return NULL;
  }
  if (napi_create_int32(env, -err, &errno_v) == napi_ok)
    napi_set_named_property(env, error, "errno", errno_v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v) == napi_ok)
    napi_set_named_property(env, error, "syscall", syscall_v);
  /* .detail: the message without the hint, for callers that can give a more precise one. */
  char detail[512];
  snprintf(detail, sizeof detail, "%s: %s (%s)", what, strerror(err), errno_name(err));
  if (napi_create_string_utf8(env, detail, NAPI_AUTO_LENGTH, &detail_v) == napi_ok)
    napi_set_named_property(env, error, "detail", detail_v);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Argument helpers                                                                           */
/* ------------------------------------------------------------------------------------------ */

static napi_value ret_int(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r); /* small integers are Smis: no allocation */
  return r;
}

static napi_value ret_undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

/* A number that is an integer in [lo, hi]. */
static bool arg_int(napi_env env, napi_value v, int64_t lo, int64_t hi, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (!(d >= (double)lo && d <= (double)hi) || d != (double)(int64_t)d) return false;
  *out = (int64_t)d;
  return true;
}

/* Interface name: a string of 1..IFNAMSIZ-1 bytes, copied NUL-terminated into out. */
static bool arg_ifname(napi_env env, napi_value v, char out[IFNAMSIZ], bool allow_empty,
                       const char *fn) {
  char tmp[IFNAMSIZ + 1];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, tmp, sizeof tmp, &len) != napi_ok) {
    throw_type(env, fn, "interface name must be a string");
    return false;
  }
  if (len >= IFNAMSIZ) {
    throw_errno(env, ENAMETOOLONG, fn, "Linux interface names are at most 15 bytes",
                "%s %s...", fn, tmp);
    return false;
  }
  if (len == 0 && !allow_empty) {
    throw_type(env, fn, "interface name must not be empty");
    return false;
  }
  memset(out, 0, IFNAMSIZ);
  memcpy(out, tmp, len);
  return true;
}

static bool arg_fd(napi_env env, napi_value v, int *fd, const char *fn) {
  int64_t x;
  if (!arg_int(env, v, 0, INT32_MAX, &x)) {
    throw_type(env, fn, "fd must be a non-negative integer");
    return false;
  }
  *fd = (int)x;
  return true;
}

/* The argument of a call that takes one fd: false when it is missing (the call returns
 * undefined) or not an fd (a TypeError is pending). */
static bool only_fd_arg(napi_env env, napi_callback_info info, int *fd, const char *fn) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc >= 1 && arg_fd(env, argv[0], fd, fn);
}

/* A typed array of the given type; *data may be NULL when *len is 0. No allocation. */
static bool typed(napi_env env, napi_value v, napi_typedarray_type want, void **data,
                  size_t *len) {
  napi_typedarray_type t;
  if (napi_get_typedarray_info(env, v, &t, len, data, NULL, NULL) != napi_ok) return false;
  return t == want;
}

/* ------------------------------------------------------------------------------------------ */
/* open(name, {multiQueue, vnetHdr}) -> {fd, name}                                            */
/* ------------------------------------------------------------------------------------------ */

static const char *open_hint(int err) {
  switch (err) {
    case ENOENT:
    case ENXIO:
    case ENODEV:
      return TUN_PATH " is missing or the driver is not loaded: load the tun module: modprobe tun";
    case EACCES:
      return "no permission on " TUN_PATH ": " CAP_HINT;
    default:
      return NULL;
  }
}

static const char *setiff_hint(int err, const char *name, char *buf, size_t size) {
  switch (err) {
    case EPERM:
      return CAP_HINT;
    case EBUSY:
      snprintf(buf, size,
               "the device exists with other settings, or is a non-multi-queue TUN whose one "
               "reader is already attached; close the other user or delete it: ip link delete %s",
               name);
      return buf;
    case EINVAL:
      snprintf(buf, size,
               "the device exists with other settings (not a TUN device, a TAP device, or a TUN "
               "whose multi_queue setting differs from the one requested); open it with matching "
               "options or delete it: ip link delete %s",
               name);
      return buf;
    case E2BIG:
      return "the multi-queue device already has the maximum number of queues (256) attached";
    default:
      return NULL;
  }
}

static bool get_bool_prop(napi_env env, napi_value obj, const char *key, bool *out) {
  napi_valuetype t;
  napi_value v;
  *out = false;
  if (napi_typeof(env, obj, &t) != napi_ok || t != napi_object) return true;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return false;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_undefined) return true;
  return napi_get_value_bool(env, v, out) == napi_ok;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char name[IFNAMSIZ];
  bool multi_queue = false, vnet_hdr = false;

  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) return throw_type(env, "open", "expected (name, flags)");
  if (!arg_ifname(env, argv[0], name, true, "open")) return NULL;
  if (argc >= 2 && (!get_bool_prop(env, argv[1], "multiQueue", &multi_queue) ||
                    !get_bool_prop(env, argv[1], "vnetHdr", &vnet_hdr)))
    return throw_type(env, "open", "flags.multiQueue and flags.vnetHdr must be booleans");

  int fd = open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return throw_errno(env, e, "open", open_hint(e), "open %s", TUN_PATH);
  }

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, IFNAMSIZ);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (multi_queue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (vnet_hdr) ifr.ifr_flags |= IFF_VNET_HDR;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    char hint[320];
    close(fd);
    return throw_errno(env, e, "ioctl", setiff_hint(e, name[0] ? name : "NAME", hint, sizeof hint),
                       "TUNSETIFF %s (%s%s)",
                       name[0] ? name : "<kernel-chosen>",
                       multi_queue ? "multi_queue" : "single queue",
                       vnet_hdr ? ", vnet_hdr" : "");
  }

  napi_value result, fd_v, name_v;
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  if (napi_create_object(env, &result) != napi_ok ||
      napi_create_int32(env, fd, &fd_v) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &name_v) != napi_ok ||
      napi_set_named_property(env, result, "fd", fd_v) != napi_ok ||
      napi_set_named_property(env, result, "name", name_v) != napi_ok) {
    close(fd);
    return NULL; /* a JS exception is pending */
  }
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* readBatch(fd, buf, slotOffsets, slotCap, lengths, max) -> count | -errno                   */
/* ------------------------------------------------------------------------------------------ */

/*
 * Reads up to `max` packets, packet i into buf[slotOffsets[i] .. + slotCap), its length into
 * lengths[i]. Stops at EAGAIN. A packet longer than slotCap is silently truncated by the
 * kernel (read returns what fit: slotCap), so its IPv4 total length exceeds its captured length
 * and the header check drops it downstream; size slots for MTU (+ VNET_HDR_LEN, or 65535 + 10
 * with TSO offload). The length is clamped to slotCap here as well. Returns the count, or
 * -errno when the first read fails with anything other than EAGAIN. An error after some packets
 * ends the batch early; the next call reports it.
 */
/* A read that never sleeps, whatever the fd's O_NONBLOCK: preadv2(RWF_NOWAIT) (Linux 4.14+; the
 * TUN honours IOCB_NOWAIT), so a queue fd a worker parks on in blocking mode (parkRead below)
 * is still read in batches without blocking. Where the kernel refuses the flag (EOPNOTSUPP)
 * plain read(2) from then on: parkReadInit never makes an fd blocking there. */
static bool rwf_nowait_refused = false;
static ssize_t read_nowait(int fd, void *p, size_t len) {
  if (!rwf_nowait_refused) {
    struct iovec iov = {p, len};
    ssize_t r = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
    if (r >= 0 || errno != EOPNOTSUPP) return r;
    rwf_nowait_refused = true;
  }
  return read(fd, p, len);
}

static napi_value js_read_batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6)
    return ret_int(env, -EINVAL);

  int32_t fd, slot_cap, max;
  void *buf_p, *offs_p, *lens_p;
  size_t buf_len, offs_len, lens_len;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      !typed(env, argv[1], napi_uint8_array, &buf_p, &buf_len) ||
      !typed(env, argv[2], napi_uint32_array, &offs_p, &offs_len) ||
      napi_get_value_int32(env, argv[3], &slot_cap) != napi_ok ||
      !typed(env, argv[4], napi_uint32_array, &lens_p, &lens_len) ||
      napi_get_value_int32(env, argv[5], &max) != napi_ok)
    return ret_int(env, -EINVAL);
  if (fd < 0) return ret_int(env, -EBADF);
  if (max < 0 || slot_cap <= 0 || (size_t)max > offs_len || (size_t)max > lens_len)
    return ret_int(env, -EINVAL);

  uint8_t *buf = buf_p;
  const uint32_t *offs = offs_p;
  uint32_t *lens = lens_p;
  /* Every slot the call may fill must fit, checked before the first read: a bad layout is a
   * bug in the caller and must show on every call, not only when traffic is heavy. */
  for (int32_t i = 0; i < max; i++)
    if ((uint64_t)offs[i] + (uint64_t)slot_cap > (uint64_t)buf_len) return ret_int(env, -EINVAL);

  int32_t n = 0;
  while (n < max) {
    ssize_t r = read_nowait(fd, buf + offs[n], (size_t)slot_cap);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN) break;
      if (n == 0) return ret_int(env, -e);
      break;
    }
    lens[n] = r > slot_cap ? (uint32_t)slot_cap : (uint32_t)r;
    n++;
  }
  return ret_int(env, n);
}

/* ------------------------------------------------------------------------------------------ */
/* writeBatch(fd, buf, offsets, lengths, count, errors?) -> consumed | -errno                 */
/* ------------------------------------------------------------------------------------------ */

/* Errors that condemn one packet, not the fd: the kernel refused this packet (bad IP version
 * nibble, bad virtio_net_hdr, too short: EINVAL), the device is down (EIO), or it could not
 * allocate for it. The packet is counted as consumed and rejected, and the batch goes on. */
static bool packet_error(int e) {
  return e == EINVAL || e == EIO || e == EMSGSIZE || e == ENOMEM || e == ENOBUFS;
}

/*
 * Writes packets i = 0..count-1 (buf[offsets[i] .. + lengths[i])) one write(2) each.
 * Returns the number CONSUMED: written plus rejected. Stops early at EAGAIN (the packet at the
 * returned index was not attempted) or at an fd-level error after progress (reported by the
 * next call). Returns -errno when nothing was consumed and the fd failed (EBADF, EBADFD...).
 * When `errors` (a Uint32Array of length >= 2) is given it is overwritten with
 * [rejected packets in this call, errno of the last rejection or 0].
 */
static napi_value js_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5)
    return ret_int(env, -EINVAL);

  int32_t fd, count;
  void *buf_p, *offs_p, *lens_p, *err_p = NULL;
  size_t buf_len, offs_len, lens_len, err_len = 0;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      !typed(env, argv[1], napi_uint8_array, &buf_p, &buf_len) ||
      !typed(env, argv[2], napi_uint32_array, &offs_p, &offs_len) ||
      !typed(env, argv[3], napi_uint32_array, &lens_p, &lens_len) ||
      napi_get_value_int32(env, argv[4], &count) != napi_ok)
    return ret_int(env, -EINVAL);
  if (argc >= 6) {
    napi_valuetype t;
    if (napi_typeof(env, argv[5], &t) != napi_ok) return ret_int(env, -EINVAL);
    if (t != napi_undefined) {
      if (!typed(env, argv[5], napi_uint32_array, &err_p, &err_len) || err_len < 2)
        return ret_int(env, -EINVAL);
    }
  }
  if (fd < 0) return ret_int(env, -EBADF);
  if (count < 0 || (size_t)count > offs_len || (size_t)count > lens_len)
    return ret_int(env, -EINVAL);

  const uint8_t *buf = buf_p;
  const uint32_t *offs = offs_p;
  const uint32_t *lens = lens_p;
  for (int32_t i = 0; i < count; i++)
    if ((uint64_t)offs[i] + (uint64_t)lens[i] > (uint64_t)buf_len) return ret_int(env, -EINVAL);

  uint32_t rejected = 0, last_err = 0;
  int32_t i = 0, result;
  for (;;) {
    if (i >= count) {
      result = i;
      break;
    }
    ssize_t r = write(fd, buf + offs[i], lens[i]);
    if (r >= 0) {
      i++;
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (packet_error(e)) {
      rejected++;
      last_err = (uint32_t)e;
      i++;
      continue;
    }
    /* EAGAIN or an fd-level error: stop here; the packet at index i was not consumed. */
    result = (i == 0 && e != EAGAIN) ? -e : i;
    break;
  }
  if (err_p) {
    uint32_t *errs = err_p;
    errs[0] = rejected;
    errs[1] = last_err;
  }
  return ret_int(env, result);
}

/* ------------------------------------------------------------------------------------------ */
/* poll(fd, wakeFd, timeoutMs) -> 0 timeout | 1 fd readable | 2 woken | 3 both                */
/* ------------------------------------------------------------------------------------------ */

/* POLLERR/POLLHUP/POLLNVAL on the TUN fd count as "readable": the following readBatch returns
 * the error as -errno, which is where the I/O thread handles errors. EINTR returns 0 (the
 * caller loops anyway). */
static napi_value js_poll(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int64_t fd, wake_fd, timeout;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || !arg_int(env, argv[0], -1, INT32_MAX, &fd) ||
      !arg_int(env, argv[1], -1, INT32_MAX, &wake_fd) ||
      !arg_int(env, argv[2], -1, INT32_MAX, &timeout))
    return throw_type(env, "poll", "expected (fd, wakeFd | -1, timeoutMs | -1) as integers");

  struct pollfd p[2];
  p[0].fd = (int)fd; /* a negative fd is ignored by poll(2) */
  p[0].events = POLLIN;
  p[0].revents = 0;
  p[1].fd = (int)wake_fd;
  p[1].events = POLLIN;
  p[1].revents = 0;
  int r = poll(p, 2, (int)timeout);
  if (r < 0) {
    int e = errno;
    if (e == EINTR) return ret_int(env, 0);
    return throw_errno(env, e, "poll", NULL, "poll fd %d, wake fd %d", (int)fd, (int)wake_fd);
  }
  const short ready = POLLIN | POLLERR | POLLHUP | POLLNVAL;
  int32_t out = 0;
  if (p[0].revents & ready) out |= 1;
  if (p[1].revents & ready) out |= 2;
  return ret_int(env, out);
}

/* ------------------------------------------------------------------------------------------ */
/* pollMany(fds: Int32Array, count, wakeFd, timeoutMs) -> readable mask | 1 << 30 when woken  */
/* ------------------------------------------------------------------------------------------ */

/* One thread serving every queue of a multi-queue TUN: bit i of the result is fds[i]
 * (readable or in error), bit 30 the waker. At most 30 fds. EINTR returns 0. */
static napi_value js_poll_many(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int64_t count, wake_fd, timeout;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  bool is_ta = false;
  if (argc >= 1) napi_is_typedarray(env, argv[0], &is_ta);
  if (argc < 4 || !is_ta || !arg_int(env, argv[1], 0, 30, &count) ||
      !arg_int(env, argv[2], -1, INT32_MAX, &wake_fd) || !arg_int(env, argv[3], -1, INT32_MAX, &timeout))
    return throw_type(env, "pollMany", "expected (fds: Int32Array, count 0..30, wakeFd | -1, timeoutMs | -1)");
  napi_get_typedarray_info(env, argv[0], &type, &len, &data, NULL, NULL);
  if (type != napi_int32_array || (size_t)count > len)
    return throw_type(env, "pollMany", "fds must be an Int32Array holding at least count fds");
  const int32_t *fds = (const int32_t *)data;
  struct pollfd p[31];
  for (int i = 0; i < count; i++) {
    p[i].fd = fds[i];
    p[i].events = POLLIN;
    p[i].revents = 0;
  }
  p[count].fd = (int)wake_fd;
  p[count].events = POLLIN;
  p[count].revents = 0;
  int r = poll(p, (nfds_t)count + 1, (int)timeout);
  if (r < 0) {
    int e = errno;
    if (e == EINTR) return ret_int(env, 0);
    return throw_errno(env, e, "pollMany", NULL, "poll of %d fds, wake fd %d", (int)count, (int)wake_fd);
  }
  const short ready = POLLIN | POLLERR | POLLHUP | POLLNVAL;
  int32_t out = 0;
  for (int i = 0; i < count; i++)
    if (p[i].revents & ready) out |= 1 << i;
  if (p[count].revents & ready) out |= 1 << 30;
  return ret_int(env, out);
}

/* ------------------------------------------------------------------------------------------ */
/* parkReadInit(fd) -> 1 | 0; parkRead(...) -> bytes | 0 | -errno; wakeThread(tid)           */
/* ------------------------------------------------------------------------------------------ */

/*
 * A worker that sleeps in read(2) on its own TUN queue instead of poll(2) + read(2): one system
 * call per packet fewer at light load (the C NAT's shape: a blocking read, then a write). What
 * else wakes the worker (a peer's hand-off, a returned slot, an expiry nomination, a control
 * message: its doorbell, workers/src/doorbell.ts) interrupts the read with a signal
 * (wakeThread: tgkill, PARK_SIGNAL).
 *
 * No wake-up is lost, by the technique of musl's cancellation points: the doorbell check and
 * the read's `syscall` instruction are both inside one assembly stub, [masq_park_begin,
 * masq_park_end). The worker stores PARKED = 2 (seq_cst) before entering it; a producer adds
 * to the doorbell and then loads PARKED, and signals the worker when it reads 2. The signal
 * handler looks at where the signal found the worker: anywhere in the stub before the read
 * completed (before the check, between the check and the syscall, or blocked in it: the kernel
 * rewinds a restartable read to its syscall instruction), it moves the worker to
 * masq_park_cancel, which returns -EINTR as if rung; at masq_park_end or later the read has
 * completed and its packet is kept. So either the worker sees the doorbell move, or the signal
 * reaches it in (or before) the read and cancels it. A signal outside a park (a producer that
 * saw PARKED = 2 just before the worker woke) finds it elsewhere: the handler does nothing and
 * SA_RESTART restarts whatever call it interrupted.
 *
 * x86-64 only (the stub); elsewhere parkReadInit returns 0 and the worker polls as before.
 */
#if defined(__x86_64__) && defined(__linux__)
#define MASQ_PARK_READ 1
/* ssize_t masq_park_read(int fd, void *buf, size_t len, const int32_t *bell, int32_t expected) */
extern ssize_t masq_park_read(int fd, void *buf, size_t len, const volatile int32_t *bell, int32_t expected);
extern char masq_park_begin[], masq_park_end[], masq_park_cancel[];
__asm__(
    ".text\n"
    ".globl masq_park_read\n"
    ".type masq_park_read,@function\n"
    "masq_park_read:\n"
    ".globl masq_park_begin\n"
    "masq_park_begin:\n"
    "  movl (%rcx), %eax\n"       /* the doorbell, now */
    "  cmpl %r8d, %eax\n"
    "  jne masq_park_cancel\n"    /* rung since the worker looked: do not sleep */
    "  xorl %eax, %eax\n"         /* SYS_read */
    "  syscall\n"
    ".globl masq_park_end\n"
    "masq_park_end:\n"
    "  ret\n"
    ".globl masq_park_cancel\n"
    "masq_park_cancel:\n"
    "  movq $-4, %rax\n"          /* -EINTR */
    "  ret\n"
    ".size masq_park_read, .-masq_park_read\n");

static void park_signal_handler(int sig, siginfo_t *si, void *ctx) {
  (void)sig;
  (void)si;
  ucontext_t *uc = (ucontext_t *)ctx;
  greg_t ip = uc->uc_mcontext.gregs[REG_RIP];
  if (ip >= (greg_t)(uintptr_t)masq_park_begin && ip < (greg_t)(uintptr_t)masq_park_end)
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)masq_park_cancel;
}
#endif

static int park_signal(void) { return SIGRTMIN + 8; }
static bool park_handler_installed = false;
static __thread pid_t park_tid = 0;

static napi_value js_park_read_init(napi_env env, napi_callback_info info) {
  int fd;
  if (!only_fd_arg(env, info, &fd, "parkReadInit")) return NULL;
#ifdef MASQ_PARK_READ
  /* The fd is made blocking only where a read of it can still be asked not to block. */
  struct iovec iov = {NULL, 0};
  if (preadv2(fd, &iov, 1, -1, RWF_NOWAIT) < 0 && errno != EAGAIN) return ret_int(env, 0);
  if (!park_handler_installed) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = park_signal_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(park_signal(), &sa, NULL) != 0) return ret_int(env, 0);
    park_handler_installed = true;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) return ret_int(env, 0);
  return ret_int(env, 1);
#else
  (void)fd;
  return ret_int(env, 0);
#endif
}

/* parkReadDone(fd): the fd back to O_NONBLOCK (a worker that stops parking on it). */
static napi_value js_park_read_done(napi_env env, napi_callback_info info) {
  int fd;
  if (!only_fd_arg(env, info, &fd, "parkReadDone")) return NULL;
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  return ret_int(env, 0);
}

/*
 * parkRead(fd, buf, off, cap, ctl: Int32Array, parkedIdx, bellIdx, bell, tidIdx)
 *   -> bytes read into buf[off, off + cap) | 0 when rung (or interrupted) | -errno.
 * Stores this thread's id at ctl[tidIdx] and PARKED = 2 at ctl[parkedIdx] (0 again on return).
 */
static napi_value js_park_read(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 9) return ret_int(env, -EINVAL);
  int32_t fd, off, cap, parked_i, bell_i, bell, tid_i;
  void *buf_p, *ctl_p;
  size_t buf_len, ctl_len;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || !typed(env, argv[1], napi_uint8_array, &buf_p, &buf_len) ||
      napi_get_value_int32(env, argv[2], &off) != napi_ok || napi_get_value_int32(env, argv[3], &cap) != napi_ok ||
      !typed(env, argv[4], napi_int32_array, &ctl_p, &ctl_len) || napi_get_value_int32(env, argv[5], &parked_i) != napi_ok ||
      napi_get_value_int32(env, argv[6], &bell_i) != napi_ok || napi_get_value_int32(env, argv[7], &bell) != napi_ok ||
      napi_get_value_int32(env, argv[8], &tid_i) != napi_ok)
    return ret_int(env, -EINVAL);
  if (fd < 0) return ret_int(env, -EBADF);
  if (off < 0 || cap <= 0 || (uint64_t)off + (uint64_t)cap > (uint64_t)buf_len || parked_i < 0 || bell_i < 0 || tid_i < 0 ||
      (size_t)parked_i >= ctl_len || (size_t)bell_i >= ctl_len || (size_t)tid_i >= ctl_len)
    return ret_int(env, -EINVAL);
#ifdef MASQ_PARK_READ
  int32_t *ctl = ctl_p;
  if (park_tid == 0) park_tid = (pid_t)syscall(SYS_gettid);
  __atomic_store_n(&ctl[tid_i], (int32_t)park_tid, __ATOMIC_SEQ_CST);
  __atomic_store_n(&ctl[parked_i], 2, __ATOMIC_SEQ_CST);
  ssize_t r = masq_park_read(fd, (uint8_t *)buf_p + off, (size_t)cap, &ctl[bell_i], bell);
  __atomic_store_n(&ctl[parked_i], 0, __ATOMIC_SEQ_CST);
  if (r == -EINTR || r == -EAGAIN) return ret_int(env, 0);
  if (r < 0) return ret_int(env, (int32_t)r);
  return ret_int(env, r > cap ? cap : (int32_t)r);
#else
  (void)buf_p; (void)ctl_p; (void)bell; (void)off;
  return ret_int(env, -ENOSYS);
#endif
}

/* wakeThread(tid): signal a worker parked in parkRead (no-op for a thread that is gone). */
static napi_value js_wake_thread(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t tid;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &tid) != napi_ok || tid <= 0) return throw_type(env, "wakeThread", "expected (tid > 0)");
  if (syscall(SYS_tgkill, getpid(), tid, park_signal()) != 0 && errno != ESRCH) {
    int e = errno;
    return throw_errno(env, e, "wakeThread", NULL, "tgkill %d", (int)tid);
  }
  return NULL;
}


/* ------------------------------------------------------------------------------------------ */
/* uringOpen / uringPass / uringClose: a worker's TUN queue through one io_uring              */
/* ------------------------------------------------------------------------------------------ */

/*
 * A run-to-completion worker's I/O through one io_uring (Linux 6.7+) instead of a system call
 * per packet: one multishot read (IORING_OP_READ_MULTISHOT) on its TUN queue fills slots of the
 * packet pool that the worker gave the kernel (a provided-buffer ring: buffer id = slot), a
 * multishot poll on its eventfd stands for the doorbell, and every packet of a pass goes out as
 * an IORING_OP_WRITE. One io_uring_enter(2) per pass submits the pass's writes and (with
 * IORING_SETUP_DEFER_TASKRUN, in that same call) reads what has arrived; when asked to wait it
 * sleeps until a packet, a ring or the timeout — a packet answered at light load costs one
 * system call, not a read and a write.
 *
 * Registered once: uringOpen takes the pool and the worker's exchange arrays (typed arrays over
 * memory that does not move: their views are kept referenced), so uringPass(h) takes no other
 * argument; what it is to do and what it did are in `io` (IO_* below, mirrored in binding.ts).
 *
 * Writes: a TUN write does not block (its socket's send buffer is unlimited), so io_uring
 * issues it inline and posts its completion during the submit; a pass that waits asks for one
 * completion more than it submitted writes, i.e. for a read or a ring. Each write's slot is
 * reported in `done` when its completion is seen, and only then may the worker reuse it (a
 * write that did go asynchronous is still safe: its slot comes back in a later pass).
 *
 * The ring belongs to the thread that opened it (IORING_SETUP_SINGLE_ISSUER); it is closed by
 * uringClose or, if the worker dies, by an environment clean-up hook (on that thread). Closing
 * first cancels every request of the ring synchronously (IORING_REGISTER_SYNC_CANCEL: the
 * multishot read, the poll, a write gone asynchronous), so once it returns the kernel writes
 * into no slot it was given; then, when `io[IO_CLOSED_IDX]` names a `ctl` word, it stores
 * U_CLOSED there: the worker's successor may take back the slots the dead ring held.
 */
#include <linux/io_uring.h>
#include <sys/mman.h>
#ifndef IORING_OP_READ_MULTISHOT
#define IORING_OP_READ_MULTISHOT 49 /* Linux 6.7; Debian 12's uapi headers stop at SENDMSG_ZC */
#endif
#ifndef IORING_ENTER_EXT_ARG
#define IORING_ENTER_EXT_ARG (1U << 3)
#endif

enum { IO_NWRITE, IO_NGIVE, IO_WAIT_MS, IO_PARKED_IDX, IO_BELL_IDX, IO_BELL, IO_MAXGOT, IO_NDONE, IO_RUNG, IO_WERR, IO_WERRNO, IO_RERR, IO_RERRNO, IO_CLOSED_IDX, IO_LEN };
/* What uring_free stores in ctl[io[IO_CLOSED_IDX]] once the ring can touch no slot any more. */
#define U_CLOSED 2
#ifndef IORING_REGISTER_SYNC_CANCEL
#define IORING_REGISTER_SYNC_CANCEL 24
#endif
#define U_TAG_READ 0ull
#define U_TAG_WRITE 1ull
#define U_TAG_POLL 2ull
#define U_MAX 64

struct uring_ctx {
  int fd, tun, wake;
  unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask, sq_entries;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  void *ring_map, *sqe_map;
  size_t ring_len, sqe_len;
  struct io_uring_buf_ring *br;
  unsigned nbuf;
  unsigned pending;
  bool rearm_read, rearm_poll, read_starved, read_failed;
  uint8_t *pool;
  size_t pool_len, slot_cap;
  uint32_t *out_off, *out_len, *got_len;
  int32_t *out_slot, *give, *got, *done, *ctl, *io;
  size_t out_n, give_n, got_n, done_n, ctl_n;
  /* ctl word to mark closed (io[IO_CLOSED_IDX] as last seen by a pass; -1 none). */
  long closed_idx;
  napi_ref refs[10];
  napi_env env;
};
static struct uring_ctx *urings[U_MAX];

/* Cancel every request of the ring and wait for it (at most a second): afterwards the kernel
 * reads into no given slot and writes from no slot. Linux 6.0+; the ring is never opened on a
 * kernel without multishot reads (6.7). */
static void uring_cancel_all(struct uring_ctx *u) {
  struct io_uring_sync_cancel_reg c;
  memset(&c, 0, sizeof c);
  c.fd = -1;
  c.flags = IORING_ASYNC_CANCEL_ANY;
  c.timeout.tv_sec = 1;
  c.timeout.tv_nsec = 0;
  long r = syscall(SYS_io_uring_register, u->fd, IORING_REGISTER_SYNC_CANCEL, &c, 1);
  (void)r; /* -ENOENT: nothing was pending */
}

static void uring_free(struct uring_ctx *u) {
  if (u->fd >= 0) {
    uring_cancel_all(u);
    close(u->fd);
    if (u->ctl && u->closed_idx >= 0 && (size_t)u->closed_idx < u->ctl_n) __atomic_store_n(&u->ctl[u->closed_idx], U_CLOSED, __ATOMIC_SEQ_CST);
  }
  if (u->ring_map && u->ring_map != MAP_FAILED) munmap(u->ring_map, u->ring_len);
  if (u->sqe_map && u->sqe_map != MAP_FAILED) munmap(u->sqe_map, u->sqe_len);
  if (u->br && (void *)u->br != MAP_FAILED) munmap(u->br, 4096 * ((u->nbuf * sizeof(struct io_uring_buf) + 4095) / 4096));
  for (int i = 0; i < 10; i++)
    if (u->refs[i]) napi_delete_reference(u->env, u->refs[i]);
  free(u);
}

static void uring_cleanup_hook(void *arg) {
  struct uring_ctx *u = arg;
  for (int h = 0; h < U_MAX; h++) {
    struct uring_ctx *want = u;
    __atomic_compare_exchange_n(&urings[h], &want, NULL, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
  }
  for (int i = 0; i < 10; i++) u->refs[i] = NULL; /* the environment is going away with them */
  uring_free(u);
}

static struct io_uring_sqe *uring_sqe(struct uring_ctx *u) {
  if (u->pending >= u->sq_entries) return NULL;
  unsigned i = (*u->sq_tail + u->pending) & *u->sq_mask;
  u->sq_array[i] = i;
  u->pending++;
  struct io_uring_sqe *e = &u->sqes[i];
  memset(e, 0, sizeof *e);
  return e;
}

static void uring_arm_read(struct uring_ctx *u) {
  struct io_uring_sqe *e = uring_sqe(u);
  if (!e) return;
  e->opcode = IORING_OP_READ_MULTISHOT;
  e->fd = u->tun;
  e->flags = IOSQE_BUFFER_SELECT;
  e->buf_group = 0;
  e->user_data = U_TAG_READ;
  u->rearm_read = false;
}

static void uring_arm_poll(struct uring_ctx *u) {
  struct io_uring_sqe *e = uring_sqe(u);
  if (!e) return;
  e->opcode = IORING_OP_POLL_ADD;
  e->fd = u->wake;
  e->len = IORING_POLL_ADD_MULTI;
  e->poll32_events = POLLIN;
  e->user_data = U_TAG_POLL << 32;
  u->rearm_poll = false;
}

static void uring_give(struct uring_ctx *u, int32_t slot) {
  unsigned short tail = u->br->tail;
  struct io_uring_buf *b = &u->br->bufs[tail & (u->nbuf - 1)];
  b->addr = (uint64_t)(uintptr_t)(u->pool + (size_t)slot * u->slot_cap);
  b->len = (uint32_t)u->slot_cap;
  b->bid = (uint16_t)slot;
  __atomic_store_n(&u->br->tail, (unsigned short)(tail + 1), __ATOMIC_RELEASE);
}

/* A typed array argument kept referenced for the ring's life; false (and -EINVAL) if it is not one. */
static bool uring_keep(napi_env env, struct uring_ctx *u, int k, napi_value v, napi_typedarray_type t, void **p, size_t *n) {
  if (!typed(env, v, t, p, n)) return false;
  return napi_create_reference(env, v, 1, &u->refs[k]) == napi_ok;
}

/* uringOpen(fd, wakeFd, pool, slotCap, nbuf, outOff, outLen, outSlot, give, got, gotLen, done, ctl, io) -> h | -errno */
static napi_value js_uring_open(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value argv[14];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 14) return ret_int(env, -EINVAL);
  int32_t tun, wake, cap, nbuf;
  if (napi_get_value_int32(env, argv[0], &tun) != napi_ok || napi_get_value_int32(env, argv[1], &wake) != napi_ok ||
      napi_get_value_int32(env, argv[3], &cap) != napi_ok || napi_get_value_int32(env, argv[4], &nbuf) != napi_ok)
    return ret_int(env, -EINVAL);
  if (tun < 0 || wake < 0 || cap <= 0 || nbuf < 1 || nbuf > 32768 || (nbuf & (nbuf - 1)) != 0) return ret_int(env, -EINVAL);
  struct uring_ctx *u = calloc(1, sizeof *u);
  if (!u) return ret_int(env, -ENOMEM);
  u->fd = -1, u->tun = tun, u->wake = wake, u->env = env, u->nbuf = (unsigned)nbuf, u->slot_cap = (size_t)cap, u->closed_idx = -1;
  void *p;
  size_t n, ign;
  int err = -EINVAL;
  if (!uring_keep(env, u, 0, argv[2], napi_uint8_array, &p, &u->pool_len)) goto fail;
  u->pool = p;
  if (!uring_keep(env, u, 1, argv[5], napi_uint32_array, &p, &u->out_n)) goto fail;
  u->out_off = p;
  if (!uring_keep(env, u, 2, argv[6], napi_uint32_array, &p, &n) || n < u->out_n) goto fail;
  u->out_len = p;
  if (!uring_keep(env, u, 3, argv[7], napi_int32_array, &p, &n) || n < u->out_n) goto fail;
  u->out_slot = p;
  if (!uring_keep(env, u, 4, argv[8], napi_int32_array, &p, &u->give_n)) goto fail;
  u->give = p;
  if (!uring_keep(env, u, 5, argv[9], napi_int32_array, &p, &u->got_n)) goto fail;
  u->got = p;
  if (!uring_keep(env, u, 6, argv[10], napi_uint32_array, &p, &n) || n < u->got_n) goto fail;
  u->got_len = p;
  if (!uring_keep(env, u, 7, argv[11], napi_int32_array, &p, &u->done_n)) goto fail;
  u->done = p;
  if (!uring_keep(env, u, 8, argv[12], napi_int32_array, &p, &u->ctl_n)) goto fail;
  u->ctl = p;
  if (!uring_keep(env, u, 9, argv[13], napi_int32_array, &p, &ign) || ign < IO_LEN) goto fail;
  u->io = p;
  u->io[IO_CLOSED_IDX] = -1; /* none until the caller names one */
  /* Every write of a pass and every slot it can give must have room in `done` (their completions). */
  if (u->done_n < u->out_n + 1 || u->pool_len / u->slot_cap > 65536) goto fail;

  struct io_uring_params pr;
  memset(&pr, 0, sizeof pr);
  pr.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
  /* Room for every write of a few passes and every slot given (the kernel wants CQ >= SQ). */
  pr.cq_entries = 4 * (unsigned)(u->out_n + (size_t)nbuf + 8);
  u->fd = (int)syscall(SYS_io_uring_setup, (unsigned)(u->out_n + 8), &pr);
  if (u->fd < 0) {
    err = -errno;
    goto fail;
  }
  err = -EOPNOTSUPP;
  if (!(pr.features & IORING_FEAT_SINGLE_MMAP) || !(pr.features & IORING_FEAT_EXT_ARG)) goto fail;
  size_t sqsz = pr.sq_off.array + pr.sq_entries * sizeof(unsigned), cqsz = pr.cq_off.cqes + pr.cq_entries * sizeof(struct io_uring_cqe);
  u->ring_len = sqsz > cqsz ? sqsz : cqsz;
  u->ring_map = mmap(NULL, u->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
  u->sqe_len = pr.sq_entries * sizeof(struct io_uring_sqe);
  u->sqe_map = mmap(NULL, u->sqe_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
  size_t brlen = 4096 * ((u->nbuf * sizeof(struct io_uring_buf) + 4095) / 4096);
  u->br = mmap(NULL, brlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (u->ring_map == MAP_FAILED || u->sqe_map == MAP_FAILED || (void *)u->br == MAP_FAILED) {
    err = -ENOMEM;
    goto fail;
  }
  uint8_t *r = u->ring_map;
  u->sq_tail = (unsigned *)(r + pr.sq_off.tail), u->sq_mask = (unsigned *)(r + pr.sq_off.ring_mask), u->sq_array = (unsigned *)(r + pr.sq_off.array);
  u->cq_head = (unsigned *)(r + pr.cq_off.head), u->cq_tail = (unsigned *)(r + pr.cq_off.tail), u->cq_mask = (unsigned *)(r + pr.cq_off.ring_mask);
  u->cqes = (struct io_uring_cqe *)(r + pr.cq_off.cqes);
  u->sqes = u->sqe_map;
  u->sq_entries = pr.sq_entries;
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)u->br;
  reg.ring_entries = u->nbuf;
  reg.bgid = 0;
  if (syscall(SYS_io_uring_register, u->fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) {
    err = -errno;
    goto fail;
  }
  uring_arm_read(u);
  uring_arm_poll(u);
  /* Submit both now: a kernel without multishot reads says so here (EINVAL), not mid-traffic. */
  __atomic_store_n(u->sq_tail, *u->sq_tail + u->pending, __ATOMIC_RELEASE);
  u->pending = 0;
  if (syscall(SYS_io_uring_enter, u->fd, 2, 0, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
    err = -errno;
    goto fail;
  }
  unsigned head = *u->cq_head, tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
  for (; head != tail; head++) {
    const struct io_uring_cqe *c = &u->cqes[head & *u->cq_mask];
    /* ENOBUFS: no slot given yet (the first pass gives them); anything else is a refusal. */
    if (c->res < 0 && c->res != -ENOBUFS) {
      err = c->res;
      goto fail;
    }
    if (c->res == -ENOBUFS || !(c->flags & IORING_CQE_F_MORE)) {
      if ((c->user_data >> 32) == U_TAG_POLL) u->rearm_poll = true;
      else u->rearm_read = true;
    }
  }
  __atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
  /* The handle: a free entry of the table every worker thread shares, claimed atomically. */
  int h = 0;
  for (; h < U_MAX; h++) {
    struct uring_ctx *none = NULL;
    if (__atomic_compare_exchange_n(&urings[h], &none, u, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) break;
  }
  if (h == U_MAX) {
    err = -EMFILE;
    goto fail;
  }
  if (napi_add_env_cleanup_hook(env, uring_cleanup_hook, u) != napi_ok) {
    __atomic_store_n(&urings[h], NULL, __ATOMIC_RELEASE);
    goto fail;
  }
  return ret_int(env, h);
fail:
  uring_free(u);
  return ret_int(env, err);
}

static struct uring_ctx *uring_arg(napi_env env, napi_callback_info info, int32_t *hp) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t h;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &h) != napi_ok ||
      h < 0 || h >= U_MAX)
    return NULL;
  struct uring_ctx *u = __atomic_load_n(&urings[h], __ATOMIC_ACQUIRE);
  *hp = h;
  /* Only the thread (environment) that opened a ring may pass on it or close it. */
  return u != NULL && u->env == env ? u : NULL;
}

/*
 * uringPass(h) -> packets read this pass (their slots in got[], lengths in gotLen[]) | -errno.
 * In io[]: IO_NWRITE packets out (outOff/outLen/outSlot) to submit; IO_NGIVE slots (give[]) to
 * hand the kernel for reads; IO_MAXGOT the most packets to take; IO_WAIT_MS -1 not to wait,
 * else the longest sleep when nothing has arrived: then ctl[IO_PARKED_IDX] = 1 (parked in poll:
 * a ring writes the eventfd) while the doorbell ctl[IO_BELL_IDX] still reads IO_BELL.
 * Out: IO_NDONE slots in done[] whose writes completed (reusable now), IO_RUNG 1 when the
 * eventfd fired, IO_WERR/IO_WERRNO rejected writes and the last errno, IO_RERR/IO_RERRNO failed
 * reads (other than running out of slots) and the last errno. A read that fails ends the
 * multishot read for good (the device went away): the queue is not read again, so a dead
 * queue cannot turn the worker's passes into a busy loop.
 */
static napi_value js_uring_pass(napi_env env, napi_callback_info info) {
  int32_t h;
  struct uring_ctx *u = uring_arg(env, info, &h);
  if (!u) return ret_int(env, -EBADF);
  int32_t *io = u->io;
  int32_t nw = io[IO_NWRITE], ng = io[IO_NGIVE], wait_ms = io[IO_WAIT_MS], maxgot = io[IO_MAXGOT];
  u->closed_idx = io[IO_CLOSED_IDX];
  if (nw < 0 || (size_t)nw > u->out_n || ng < 0 || (size_t)ng > u->give_n || maxgot < 0 || (size_t)maxgot > u->got_n)
    return ret_int(env, -EINVAL);
  size_t nslots = u->pool_len / u->slot_cap;
  for (int32_t i = 0; i < ng; i++)
    if (u->give[i] < 0 || (size_t)u->give[i] >= nslots) return ret_int(env, -EINVAL);
  for (int32_t i = 0; i < nw; i++)
    if ((uint64_t)u->out_off[i] + u->out_len[i] > u->pool_len || u->out_slot[i] < 0 || (size_t)u->out_slot[i] >= nslots) return ret_int(env, -EINVAL);
  for (int32_t i = 0; i < ng; i++) uring_give(u, u->give[i]);
  if (ng > 0 && u->read_starved && !u->read_failed) u->rearm_read = true, u->read_starved = false;
  if (u->rearm_read) uring_arm_read(u);
  if (u->rearm_poll) uring_arm_poll(u);
  unsigned writes = 0;
  for (int32_t i = 0; i < nw; i++) {
    struct io_uring_sqe *e = uring_sqe(u);
    if (!e) break; /* cannot happen: the ring has room for out_n + 8 */
    e->opcode = IORING_OP_WRITE;
    e->fd = u->tun;
    e->addr = (uint64_t)(uintptr_t)(u->pool + u->out_off[i]);
    e->len = u->out_len[i];
    e->off = 0;
    e->user_data = U_TAG_WRITE << 32 | (uint32_t)u->out_slot[i];
    writes++;
  }
  unsigned submit = u->pending;
  __atomic_store_n(u->sq_tail, *u->sq_tail + submit, __ATOMIC_RELEASE);
  u->pending = 0;
  unsigned head = *u->cq_head;
  unsigned ready = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE) - head;
  unsigned flags = IORING_ENTER_GETEVENTS, min = 0;
  struct io_uring_getevents_arg arg;
  struct __kernel_timespec ts;
  bool parked = false;
  if (wait_ms >= 0 && ready == 0 && io[IO_PARKED_IDX] >= 0 && (size_t)io[IO_PARKED_IDX] < u->ctl_n && io[IO_BELL_IDX] >= 0 &&
      (size_t)io[IO_BELL_IDX] < u->ctl_n) {
    __atomic_store_n(&u->ctl[io[IO_PARKED_IDX]], 1, __ATOMIC_SEQ_CST);
    parked = true;
    if (__atomic_load_n(&u->ctl[io[IO_BELL_IDX]], __ATOMIC_SEQ_CST) == io[IO_BELL]) {
      /* One completion more than this pass's writes: a packet, a ring or the timeout. */
      min = writes + 1;
      ts.tv_sec = wait_ms / 1000;
      ts.tv_nsec = (long)(wait_ms % 1000) * 1000000L;
      memset(&arg, 0, sizeof arg);
      arg.ts = (uint64_t)(uintptr_t)&ts;
      flags |= IORING_ENTER_EXT_ARG;
    }
  }
  long r = syscall(SYS_io_uring_enter, u->fd, submit, min, flags, min ? (void *)&arg : NULL, min ? sizeof arg : 0);
  int enter_err = r < 0 ? errno : 0;
  if (parked) __atomic_store_n(&u->ctl[io[IO_PARKED_IDX]], 0, __ATOMIC_SEQ_CST);
  if (r < 0 && enter_err != EINTR && enter_err != ETIME && enter_err != EAGAIN && enter_err != EBUSY) return ret_int(env, -enter_err);

  int32_t got = 0, ndone = 0, rung = 0, werr = 0, rerr = 0;
  unsigned tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
  for (; head != tail; head++) {
    const struct io_uring_cqe *c = &u->cqes[head & *u->cq_mask];
    uint64_t tag = c->user_data >> 32;
    if (tag == U_TAG_WRITE) {
      if ((size_t)ndone >= u->done_n) break; /* the rest next pass */
      if (c->res < 0) werr++, io[IO_WERRNO] = -c->res;
      u->done[ndone++] = (int32_t)(uint32_t)c->user_data;
      continue;
    }
    if (tag == U_TAG_POLL) {
      rung = 1;
      if (!(c->flags & IORING_CQE_F_MORE)) u->rearm_poll = true;
      continue;
    }
    /* The read. */
    if (c->res >= 0 && (c->flags & IORING_CQE_F_BUFFER) && got >= maxgot) break; /* the rest next pass */
    if (!(c->flags & IORING_CQE_F_MORE)) u->rearm_read = true;
    if (c->res == -ENOBUFS) {
      u->rearm_read = false, u->read_starved = true; /* re-armed when slots are given */
      continue;
    }
    if (c->res <= 0 || !(c->flags & IORING_CQE_F_BUFFER)) {
      /* The queue failed (the device went away: EBADFD, EIO) or ended: counted, and not read
       * again, which would fail at once in every pass; the worker still wakes for its doorbell. */
      rerr++, io[IO_RERRNO] = c->res < 0 ? -c->res : 0;
      if (!(c->flags & IORING_CQE_F_MORE)) u->rearm_read = false, u->read_failed = true;
      continue;
    }
    u->got[got] = (int32_t)(c->flags >> IORING_CQE_BUFFER_SHIFT);
    u->got_len[got] = (uint32_t)c->res > u->slot_cap ? (uint32_t)u->slot_cap : (uint32_t)c->res;
    got++;
  }
  __atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
  if (rung) {
    uint64_t v;
    ssize_t rr = read(u->wake, &v, sizeof v); /* reset the eventfd: the next ring fires again */
    (void)rr;
  }
  io[IO_NDONE] = ndone, io[IO_RUNG] = rung, io[IO_WERR] = werr, io[IO_RERR] = rerr;
  return ret_int(env, got);
}

/* uringClose(h): close the ring (the multishot read and poll end with it). */
static napi_value js_uring_close(napi_env env, napi_callback_info info) {
  int32_t h;
  struct uring_ctx *u = uring_arg(env, info, &h);
  if (!u) return ret_int(env, -EBADF);
  __atomic_store_n(&urings[h], NULL, __ATOMIC_RELEASE);
  napi_remove_env_cleanup_hook(env, uring_cleanup_hook, u);
  uring_free(u);
  return ret_int(env, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* eventfd() -> fd, wake(efd), drainWake(efd) -> count, close(fd)                             */
/* ------------------------------------------------------------------------------------------ */

static napi_value js_eventfd(napi_env env, napi_callback_info info) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return throw_errno(env, e, "eventfd", e == EMFILE || e == ENFILE ? "too many open files" : NULL,
                       "eventfd");
  }
  return ret_int(env, fd);
}

/* Adds 1 to the eventfd counter. Safe from any thread (the fd number is all it needs). A full
 * counter (EAGAIN) already means "woken", so it is not an error. */
static napi_value js_wake(napi_env env, napi_callback_info info) {
  int fd;
  if (!only_fd_arg(env, info, &fd, "wake")) return NULL;
  uint64_t one = 1;
  for (;;) {
    ssize_t r = write(fd, &one, sizeof one);
    if (r == (ssize_t)sizeof one) break;
    int e = errno;
    if (r < 0 && e == EINTR) continue;
    if (r < 0 && e == EAGAIN) break;
    return throw_errno(env, r < 0 ? e : EIO, "write", "is it an fd from createWaker()?",
                       "wake eventfd %d", fd);
  }
  return ret_undefined(env);
}

/* Resets the eventfd counter; returns how many wakes were pending (0 if none). */
static napi_value js_drain_wake(napi_env env, napi_callback_info info) {
  int fd;
  if (!only_fd_arg(env, info, &fd, "drainWake")) return NULL;
  uint64_t v = 0;
  for (;;) {
    ssize_t r = read(fd, &v, sizeof v);
    if (r == (ssize_t)sizeof v) break;
    int e = errno;
    if (r < 0 && e == EINTR) continue;
    if (r < 0 && e == EAGAIN) {
      v = 0;
      break;
    }
    return throw_errno(env, r < 0 ? e : EIO, "read", "is it an fd from createWaker()?",
                       "drain eventfd %d", fd);
  }
  napi_value out;
  napi_create_double(env, (double)v, &out);
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* yieldCpu() -> 0                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* sched_yield(2): a translation worker that waits a few µs for the I/O thread's hand-off
 * lets whatever else is runnable on its CPU (the I/O thread itself, on a small machine) go
 * first instead of spinning against it. Never fails on Linux. */
static napi_value js_yield_cpu(napi_env env, napi_callback_info info) {
  (void)info;
  return ret_int(env, sched_yield());
}

/* ------------------------------------------------------------------------------------------ */
/* setThreadPolicy(policy) -> undefined                                                        */
/* ------------------------------------------------------------------------------------------ */

/* sched_setscheduler(2) on the CALLING thread only (pid 0 is the caller's thread id on Linux):
 * policy 0 = SCHED_OTHER, 3 = SCHED_BATCH, both with static priority 0 (so no privilege is
 * needed). SCHED_BATCH keeps the thread's fair share but its wake-ups do not preempt the task
 * running on the CPU: a packet thread woken by each packet then no longer interrupts the
 * programs that make the packets, and packets gather into batches. Other policies (the
 * real-time ones need CAP_SYS_NICE and starve the rest of a small machine) are refused with
 * EINVAL. */
static napi_value js_set_thread_policy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t policy;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &policy) != napi_ok ||
      (policy != SCHED_OTHER && policy != SCHED_BATCH)) {
    return throw_errno(env, EINVAL, "sched_setscheduler", "use 0 (SCHED_OTHER) or 3 (SCHED_BATCH)",
                       "setThreadPolicy: bad policy");
  }
  struct sched_param sp = {.sched_priority = 0};
  if (sched_setscheduler(0, policy, &sp) < 0) {
    int e = errno;
    return throw_errno(env, e, "sched_setscheduler", NULL, "set scheduling policy %d", policy);
  }
  return ret_undefined(env);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  int fd;
  if (!only_fd_arg(env, info, &fd, "close")) return NULL;
  /* On Linux the fd is released even when close(2) reports EINTR: never retry. */
  if (close(fd) < 0 && errno != EINTR) {
    int e = errno;
    return throw_errno(env, e, "close", e == EBADF ? "the fd is not open (closed twice?)" : NULL,
                       "close fd %d", fd);
  }
  return ret_undefined(env);
}

/* ------------------------------------------------------------------------------------------ */
/* Interface control: SIOC* ioctls on an AF_INET datagram socket                              */
/* ------------------------------------------------------------------------------------------ */

static const char *ifctl_hint(int err) {
  switch (err) {
    case EPERM:
    case EACCES:
      return CAP_HINT;
    case ENODEV:
      return "no interface with that name in this network namespace";
    default:
      return NULL;
  }
}

/* Runs one SIOC* ioctl on a fresh control socket. Returns 0, or throws and returns -1. */
static int ifctl(napi_env env, unsigned long req, const char *req_name, struct ifreq *ifr,
                 const char *hint_override) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    int e = errno;
    throw_errno(env, e, "socket", NULL, "%s %s: control socket", req_name, ifr->ifr_name);
    return -1;
  }
  if (ioctl(s, req, ifr) < 0) {
    int e = errno;
    close(s);
    const char *hint = ifctl_hint(e);
    if (!hint && hint_override) hint = hint_override;
    throw_errno(env, e, "ioctl", hint, "%s %s", req_name, ifr->ifr_name);
    return -1;
  }
  close(s);
  return 0;
}

/* The prologue every interface get/set shares: `want` arguments (the first an interface
 * name) into argv, and a zeroed ifreq naming the interface. False: a TypeError is pending. */
static bool ifreq_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv,
                       struct ifreq *ifr, const char *fn, const char *usage) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    throw_type(env, fn, usage);
    return false;
  }
  memset(ifr, 0, sizeof *ifr);
  return arg_ifname(env, argv[0], ifr->ifr_name, false, fn);
}

static napi_value js_set_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct ifreq ifr;
  int64_t mtu;
  if (!ifreq_args(env, info, 2, argv, &ifr, "setMtu", "expected (name, mtu)")) return NULL;
  if (!arg_int(env, argv[1], 0, INT32_MAX, &mtu))
    return throw_type(env, "setMtu", "mtu must be a non-negative integer");
  ifr.ifr_mtu = (int)mtu;
  if (ifctl(env, SIOCSIFMTU, "SIOCSIFMTU", &ifr, "a TUN MTU must be within 68..65535") < 0)
    return NULL;
  return ret_undefined(env);
}

static napi_value js_get_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct ifreq ifr;
  if (!ifreq_args(env, info, 1, argv, &ifr, "getMtu", "expected (name)")) return NULL;
  if (ifctl(env, SIOCGIFMTU, "SIOCGIFMTU", &ifr, NULL) < 0) return NULL;
  return ret_int(env, ifr.ifr_mtu);
}

static napi_value js_get_flags(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct ifreq ifr;
  if (!ifreq_args(env, info, 1, argv, &ifr, "getFlags", "expected (name)")) return NULL;
  if (ifctl(env, SIOCGIFFLAGS, "SIOCGIFFLAGS", &ifr, NULL) < 0) return NULL;
  return ret_int(env, (uint16_t)ifr.ifr_flags);
}

static napi_value js_set_up(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct ifreq ifr;
  bool up;
  if (!ifreq_args(env, info, 2, argv, &ifr, "setUp", "expected (name, up)")) return NULL;
  if (napi_get_value_bool(env, argv[1], &up) != napi_ok)
    return throw_type(env, "setUp", "up must be a boolean");
  if (ifctl(env, SIOCGIFFLAGS, "SIOCGIFFLAGS", &ifr, NULL) < 0) return NULL;
  if (up)
    ifr.ifr_flags |= IFF_UP;
  else
    ifr.ifr_flags &= ~IFF_UP;
  if (ifctl(env, SIOCSIFFLAGS, "SIOCSIFFLAGS", &ifr, NULL) < 0) return NULL;
  return ret_undefined(env);
}

static napi_value js_set_txqueuelen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct ifreq ifr;
  int64_t n;
  if (!ifreq_args(env, info, 2, argv, &ifr, "setTxQueueLen", "expected (name, n)")) return NULL;
  if (!arg_int(env, argv[1], 0, INT32_MAX, &n))
    return throw_type(env, "setTxQueueLen", "n must be a non-negative integer");
  ifr.ifr_qlen = (int)n;
  if (ifctl(env, SIOCSIFTXQLEN, "SIOCSIFTXQLEN", &ifr, NULL) < 0) return NULL;
  return ret_undefined(env);
}

static napi_value js_get_txqueuelen(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct ifreq ifr;
  if (!ifreq_args(env, info, 1, argv, &ifr, "getTxQueueLen", "expected (name)")) return NULL;
  if (ifctl(env, SIOCGIFTXQLEN, "SIOCGIFTXQLEN", &ifr, NULL) < 0) return NULL;
  return ret_int(env, ifr.ifr_qlen);
}

/* setAddress(name, addr, prefixLen): addr is a uint32 in host order (10.0.0.1 = 0x0a000001). */
static napi_value js_set_address(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  struct ifreq ifr;
  int64_t addr, prefix;
  if (!ifreq_args(env, info, 3, argv, &ifr, "setAddress", "expected (name, addr, prefixLen)")) return NULL;
  if (!arg_int(env, argv[1], 0, UINT32_MAX, &addr))
    return throw_type(env, "setAddress", "addr must be a uint32");
  if (!arg_int(env, argv[2], 0, 32, &prefix))
    return throw_type(env, "setAddress", "prefixLen must be an integer in 0..32");

  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl((uint32_t)addr);
  memcpy(&ifr.ifr_addr, &sin, sizeof sin);
  if (ifctl(env, SIOCSIFADDR, "SIOCSIFADDR", &ifr, NULL) < 0) return NULL;

  uint32_t mask = prefix == 0 ? 0 : (uint32_t)(0xffffffffu << (32 - prefix));
  sin.sin_addr.s_addr = htonl(mask);
  memcpy(&ifr.ifr_netmask, &sin, sizeof sin);
  if (ifctl(env, SIOCSIFNETMASK, "SIOCSIFNETMASK", &ifr, NULL) < 0) return NULL;
  return ret_undefined(env);
}

/* ------------------------------------------------------------------------------------------ */
/* TUN fd ioctls                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* TUNSETOFFLOAD takes the TUN_F_* flags BY VALUE as the ioctl argument (tun.c: set_offload(tun,
 * arg)), unlike most TUN ioctls which take a pointer. */
static napi_value js_set_offload(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd;
  int64_t flags;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_type(env, "setOffload", "expected (fd, flags)");
  if (!arg_fd(env, argv[0], &fd, "setOffload")) return NULL;
  if (!arg_int(env, argv[1], 0, UINT32_MAX, &flags))
    return throw_type(env, "setOffload", "flags must be a uint32 of TUN_F_* bits");
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0) {
    int e = errno;
    return throw_errno(env, e, "ioctl",
                       e == EINVAL ? "unsupported TUN_F_* combination (TSO needs TUN_F_CSUM)" : NULL,
                       "TUNSETOFFLOAD fd %d flags 0x%lx", fd, (unsigned long)flags);
  }
  return ret_undefined(env);
}

/* ------------------------------------------------------------------------------------------ */
/* setSteeringProgram(fd, insns: Uint8Array | null): load a BPF_PROG_TYPE_SOCKET_FILTER program   */
/* (struct bpf_insn[], workers/src/steering.ts) and attach it with TUNSETSTEERINGEBPF: the kernel */
/* then puts each packet on queue (return value % queues). null detaches. The verifier's log is  */
/* in the error message when the load is refused.                                                */
/* ------------------------------------------------------------------------------------------ */

static napi_value js_set_steering_program(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_type(env, "setSteeringProgram", "expected (fd, insns: Uint8Array | null)");
  if (!arg_fd(env, argv[0], &fd, "setSteeringProgram")) return NULL;
  napi_valuetype vt;
  napi_typeof(env, argv[1], &vt);
  if (vt == napi_null) {
    int none = -1;
    if (ioctl(fd, TUNSETSTEERINGEBPF, &none) < 0) {
      int e = errno;
      return throw_errno(env, e, "ioctl", NULL, "TUNSETSTEERINGEBPF (detach) fd %d", fd);
    }
    return ret_undefined(env);
  }
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  if (is_ta) napi_get_typedarray_info(env, argv[1], &type, &len, &data, NULL, NULL);
  if (!is_ta || type != napi_uint8_array || len == 0 || len % 8 != 0 || len / 8 > 4096)
    return throw_type(env, "setSteeringProgram", "insns must be a Uint8Array of 1..4096 struct bpf_insn (8 bytes each)");
  static char log[16384];
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = (uint64_t)(uintptr_t)data;
  attr.insn_cnt = (uint32_t)(len / 8);
  attr.license = (uint64_t)(uintptr_t)"GPL";
  int pfd = (int)syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (pfd < 0) {
    int e = errno;
    /* Again with the verifier's log, for the message. */
    log[0] = 0;
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = sizeof log;
    attr.log_level = 1;
    int again = (int)syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    if (again >= 0) close(again);
    size_t n = strlen(log);
    const char *tail = n > 300 ? log + n - 300 : log;
    return throw_errno(env, e, "bpf", e == EPERM ? "loading BPF programs needs root (CAP_BPF)" : NULL,
                       "BPF_PROG_LOAD of a %u-instruction steering program: %s", attr.insn_cnt, tail);
  }
  if (ioctl(fd, TUNSETSTEERINGEBPF, &pfd) < 0) {
    int e = errno;
    close(pfd);
    return throw_errno(env, e, "ioctl", NULL, "TUNSETSTEERINGEBPF fd %d", fd);
  }
  close(pfd); /* the device holds its own reference */
  return ret_undefined(env);
}

static napi_value js_set_vnet_hdr_size(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd;
  int64_t n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_type(env, "setVnetHdrSize", "expected (fd, n)");
  if (!arg_fd(env, argv[0], &fd, "setVnetHdrSize")) return NULL;
  if (!arg_int(env, argv[1], 0, INT32_MAX, &n))
    return throw_type(env, "setVnetHdrSize", "n must be a non-negative integer");
  int sz = (int)n;
  if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
    int e = errno;
    return throw_errno(env, e, "ioctl",
                       e == EINVAL ? "the size must be at least 10 (sizeof struct virtio_net_hdr)"
                                   : NULL,
                       "TUNSETVNETHDRSZ fd %d size %d", fd, sz);
  }
  return ret_undefined(env);
}

/* getIfType(fd) -> {name, flags}: TUNGETIFF on an attached fd; flags are IFF_TUN, IFF_TAP,
 * IFF_NO_PI, IFF_MULTI_QUEUE, IFF_VNET_HDR, IFF_PERSIST... as the kernel reports them. */
static napi_value js_get_if_type(napi_env env, napi_callback_info info) {
  int fd;
  if (!only_fd_arg(env, info, &fd, "getIfType")) return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
    int e = errno;
    return throw_errno(env, e, "ioctl",
                       e == EBADFD ? "the fd is not attached to a TUN device" : NULL,
                       "TUNGETIFF fd %d", fd);
  }
  napi_value result, name_v, flags_v;
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  if (napi_create_object(env, &result) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &name_v) != napi_ok ||
      napi_create_int32(env, (uint16_t)ifr.ifr_flags, &flags_v) != napi_ok ||
      napi_set_named_property(env, result, "name", name_v) != napi_ok ||
      napi_set_named_property(env, result, "flags", flags_v) != napi_ok)
    return NULL;
  return result;
}

/* errnoName(n) -> 'EAGAIN': for logging the negative returns of readBatch/writeBatch. */
static napi_value js_errno_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int64_t n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_int(env, argv[0], -4095, 4095, &n))
    return throw_type(env, "errnoName", "expected an errno number");
  int e = (int)(n < 0 ? -n : n);
  const char *name = strerrorname_np(e);
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &out);
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Module                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static napi_value add_int(napi_env env, napi_value exports, const char *name, int32_t v) {
  napi_value x;
  napi_create_int32(env, v, &x);
  napi_set_named_property(env, exports, name, x);
  return exports;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readBatch", NULL, js_read_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"parkReadInit", NULL, js_park_read_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"parkReadDone", NULL, js_park_read_done, NULL, NULL, NULL, napi_enumerable, NULL},
      {"parkRead", NULL, js_park_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"wakeThread", NULL, js_wake_thread, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeBatch", NULL, js_write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"poll", NULL, js_poll, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollMany", NULL, js_poll_many, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfd", NULL, js_eventfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"wake", NULL, js_wake, NULL, NULL, NULL, napi_enumerable, NULL},
      {"drainWake", NULL, js_drain_wake, NULL, NULL, NULL, napi_enumerable, NULL},
      {"yieldCpu", NULL, js_yield_cpu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreadPolicy", NULL, js_set_thread_policy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setMtu", NULL, js_set_mtu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getMtu", NULL, js_get_mtu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setUp", NULL, js_set_up, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setTxQueueLen", NULL, js_set_txqueuelen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getTxQueueLen", NULL, js_get_txqueuelen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setAddress", NULL, js_set_address, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getFlags", NULL, js_get_flags, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setOffload", NULL, js_set_offload, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setVnetHdrSize", NULL, js_set_vnet_hdr_size, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setSteeringProgram", NULL, js_set_steering_program, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getIfType", NULL, js_get_if_type, NULL, NULL, NULL, napi_enumerable, NULL},
      {"errnoName", NULL, js_errno_name, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uringOpen", NULL, js_uring_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uringPass", NULL, js_uring_pass, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uringClose", NULL, js_uring_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) != napi_ok)
    return NULL;
  add_int(env, exports, "EAGAIN", EAGAIN);
  add_int(env, exports, "EINVAL", EINVAL);
  add_int(env, exports, "EBADF", EBADF);
  add_int(env, exports, "EIO", EIO);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
