// loader.cc — open, configure, load and attach the flowtap programs with
// libbpf, then read the ring buffer on a poll thread. Reads top to bottom in
// that order; Probe::Stop() and Probe::Destroy() are the one cleanup path, in
// reverse order. No N-API here (see loader.h).
#include "loader.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <system_error>

#include "flowtap.skel.h"

namespace flowtap {
namespace {

// A batch is handed over mid-poll once it holds this much, so one busy poll
// cannot build an unbounded buffer; a parcel not yet taken grows to this much.
constexpr size_t kBatchHandOverBytes = 256 * 1024;
// How often the poll thread re-checks the pending bytes while over the cap.
constexpr std::chrono::milliseconds kPendingRecheck{1};
constexpr size_t kBatchReserveBytes = 4096;
constexpr const char *kCgroupHint =
    "pass a directory under the cgroup2 mount (e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified)";

// --- libbpf log capture --------------------------------------------------
// libbpf prints through one process-wide callback. We keep its last lines so a
// failed load can quote the verifier's reasons; nothing is printed to stderr
// (flowtap's logs are JSON lines written by the TypeScript side).
constexpr size_t kLogLines = 40;
constexpr size_t kLogLineMax = 512;

std::mutex g_log_mutex;
std::deque<std::string> g_log;     // guarded by g_log_mutex
bool g_log_has_verifier = false;   // guarded by g_log_mutex: a PROG LOAD LOG was printed

// Any thread (libbpf calls it from whichever thread made the libbpf call).
int CaptureLibbpfLog(enum libbpf_print_level level, const char *format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  va_list measure;
  va_copy(measure, args);
  int n = vsnprintf(nullptr, 0, format, measure);
  va_end(measure);
  if (n <= 0) return 0;
  // A verifier log arrives as one call of up to megabytes; format it whole so
  // its tail, which holds the reason, is what we keep.
  std::string text(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(&text[0], text.size(), format, args);
  text.resize(static_cast<size_t>(n));

  std::lock_guard<std::mutex> lock(g_log_mutex);
  if (text.find("BEGIN PROG LOAD LOG") != std::string::npos) g_log_has_verifier = true;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) {
      g_log.emplace_back(text, start, std::min(end - start, kLogLineMax));
      if (g_log.size() > kLogLines) g_log.pop_front();
    }
    start = end + 1;
  }
  return n;
}

// Owner thread. Installs the capture once and forgets earlier lines, so a
// failure quotes only what this start printed.
void ResetLibbpfLog() {
  static std::once_flag installed;
  std::call_once(installed, [] { libbpf_set_print(CaptureLibbpfLog); });
  std::lock_guard<std::mutex> lock(g_log_mutex);
  g_log.clear();
  g_log_has_verifier = false;
}

// Owner thread. The captured lines, newline-separated ("" when none).
std::string LibbpfLogTail() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::string tail;
  for (const std::string &line : g_log) {
    if (!tail.empty()) tail += '\n';
    tail += line;
  }
  return tail;
}

bool LibbpfLogHasVerifier() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  return g_log_has_verifier;
}

[[noreturn]] void Fail(const char *step, int err, const std::string &message) {
  throw ProbeError(step, err, message);
}

// "(EPERM): Operation not permitted" — the part most messages end with.
std::string Describe(int err) {
  return "(" + ErrnoName(err) + "): " + strerror(err);
}

std::string WithLogTail(std::string message) {
  std::string tail = LibbpfLogTail();
  if (!tail.empty()) message += "\n" + tail;
  return message;
}

const char *FsName(unsigned long magic) {
  switch (magic) {
    case CGROUP_SUPER_MAGIC: return "a cgroup v1 hierarchy";
    case TMPFS_MAGIC: return "tmpfs";
    case SYSFS_MAGIC: return "sysfs";
    case PROC_SUPER_MAGIC: return "procfs";
    case EXT4_SUPER_MAGIC: return "ext4";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
    default: return nullptr;
  }
}

size_t RoundUp8(size_t n) { return (n + 7) & ~size_t{7}; }

// Entries read per batched lookup of the flow table.
constexpr uint32_t kFlowTableChunk = 4096;

}  // namespace

std::string ErrnoName(int err) {
  const char *name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

Probe::Probe(BatchSink on_batch, ErrorSink on_error, DoneSink on_done)
    : on_batch_(std::move(on_batch)), on_error_(std::move(on_error)), on_done_(std::move(on_done)) {}

Probe::~Probe() { Destroy(); }

// --- start: open → configure → load → attach → ring buffer → poll thread --

std::unique_ptr<Probe> Probe::Start(const ProbeOptions &options, BatchSink on_batch,
                                    ErrorSink on_error, DoneSink on_done) {
  // On a throw, ~Probe undoes whatever of the steps below succeeded.
  std::unique_ptr<Probe> probe(
      new Probe(std::move(on_batch), std::move(on_error), std::move(on_done)));
  probe->max_pending_bytes_ = options.max_pending_bytes;
  ResetLibbpfLog();

  probe->OpenCgroup(options.cgroup_path);
  probe->num_cpus_ = libbpf_num_possible_cpus();
  if (probe->num_cpus_ <= 0)
    Fail("open", -probe->num_cpus_, "cannot count the possible CPUs " + Describe(-probe->num_cpus_));

  probe->skel_ = flowtap_bpf__open();
  if (probe->skel_ == nullptr) {
    int err = errno;
    Fail("open", err, WithLogTail("opening the embedded eBPF object failed " + Describe(err)));
  }

  // Map sizes are fixed at creation, so they are set between open and load.
  int err = bpf_map__set_max_entries(probe->skel_->maps.events, options.ring_buffer_bytes);
  if (err == 0) err = bpf_map__set_max_entries(probe->skel_->maps.flows, options.flow_table_entries);
  if (err == 0) err = bpf_map__set_max_entries(probe->skel_->maps.pending, options.flow_table_entries);
  if (err != 0) Fail("configure", -err, "sizing the eBPF maps failed " + Describe(-err));
  probe->flow_table_entries_ = options.flow_table_entries;
  probe->poll_interval_ms_ = static_cast<int>(options.poll_interval_ms);
  probe->ConfigureFilters(options.filters);
  probe->skel_->rodata->cfg_wakeup_bytes = options.wakeup_bytes;
  probe->ConfigureSockets();

  err = flowtap_bpf__load(probe->skel_);
  if (err != 0) {
    err = -err;
    // The verifier also answers EACCES for unsafe code; only without a
    // verifier log is EACCES about privilege.
    bool refused = err == EPERM || (err == EACCES && !LibbpfLogHasVerifier());
    if (refused)
      Fail("load", err, "loading the eBPF programs was refused (" + ErrnoName(err) +
                            "): flowtap needs CAP_BPF and CAP_NET_ADMIN (or root)");
    Fail("load", err, WithLogTail("the kernel rejected the eBPF programs (" + ErrnoName(err) + "):"));
  }
  probe->loaded_ = true;
  // Before attach: no flow may pass while the filters are half set.
  probe->FillCidrMaps();

  // bpf_link attachments: when the process dies its fds close and the
  // programs detach, so a crash leaves nothing attached.
  struct {
    const char *step;
    struct bpf_program *prog;
    struct bpf_link **link;
  } attach[] = {
      {"attach_ingress", probe->skel_->progs.flowtap_ingress, &probe->ingress_link_},
      {"attach_egress", probe->skel_->progs.flowtap_egress, &probe->egress_link_},
  };
  for (const auto &a : attach) {
    *a.link = bpf_program__attach_cgroup(a.prog, probe->cgroup_fd_);
    if (*a.link == nullptr) {
      int e = errno;
      if (e == EPERM || e == EACCES)
        Fail(a.step, e, "attaching to cgroup " + options.cgroup_path + " was refused (" +
                            ErrnoName(e) + "): flowtap needs CAP_NET_ADMIN");
      Fail(a.step, e, WithLogTail("attaching to cgroup " + options.cgroup_path + " failed " +
                                  Describe(e)));
    }
  }

  probe->AttachSockets(options.cgroup_path);

  probe->rb_ = ring_buffer__new(bpf_map__fd(probe->skel_->maps.events), OnRecord, probe.get(),
                                nullptr);
  if (probe->rb_ == nullptr) {
    int e = errno;
    Fail("ringbuf", e, "setting up the ring buffer reader failed " + Describe(e));
  }

  try {
    probe->thread_ = std::thread(&Probe::PollLoop, probe.get());
  } catch (const std::system_error &e) {
    Fail("thread", e.code().value(), std::string("starting the poll thread failed: ") + e.what());
  }
  return probe;
}

// Owner thread. The path must be a directory on the cgroup2 file system.
void Probe::OpenCgroup(const std::string &path) {
  cgroup_fd_ = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgroup_fd_ < 0) {
    int e = errno;
    if (e == ENOENT) Fail("open_cgroup", e, "cgroup path " + path + " does not exist");
    if (e == ENOTDIR)
      Fail("open_cgroup", e,
           path + " is not a cgroup v2 directory (not a directory), " + kCgroupHint);
    Fail("open_cgroup", e, "cannot open cgroup path " + path + " " + Describe(e));
  }
  struct statfs fs;
  if (fstatfs(cgroup_fd_, &fs) != 0) {
    int e = errno;
    Fail("open_cgroup", e, "cannot stat cgroup path " + path + " " + Describe(e));
  }
  if (static_cast<unsigned long>(fs.f_type) != CGROUP2_SUPER_MAGIC) {
    const char *name = FsName(static_cast<unsigned long>(fs.f_type));
    char other[32];
    snprintf(other, sizeof other, "file system type 0x%lx", static_cast<unsigned long>(fs.f_type));
    Fail("open_cgroup", EINVAL,
         path + " is not a cgroup v2 directory (it is on " + (name ? name : other) + "), " +
             kCgroupHint);
  }
}

// Owner thread, between open and load. Writes the filter rodata as given and
// sizes the CIDR tries for the entries (the verdicts were worked out in
// src/kernel/filter.ts).
void Probe::ConfigureFilters(const KernelFilters &f) {
  auto *ro = skel_->rodata;
  static_assert(sizeof ro->cfg_port_skip == FLOWTAP_PORT_SKIP_WORDS * sizeof(uint64_t),
                "cfg_port_skip is FLOWTAP_PORT_SKIP_WORDS words");
  ro->cfg_filter = f.filter;
  ro->cfg_directions = f.directions;
  ro->cfg_port_filter = f.port_filter;
  memcpy(const_cast<__u64 *>(ro->cfg_port_skip), f.port_skip.data(), sizeof ro->cfg_port_skip);
  ro->cfg_cidr4_filter = f.cidr4_filter;
  ro->cfg_cidr6_filter = f.cidr6_filter;
  ro->cfg_cidr_unmatched = f.cidr_unmatched;
  cidr4_keys_ = f.cidr4_keys;
  cidr4_values_ = f.cidr4_values;
  cidr6_keys_ = f.cidr6_keys;
  cidr6_values_ = f.cidr6_values;
  // An LPM trie needs at least one entry of room even when unused.
  size_t n4 = cidr4_keys_.size() / sizeof(struct flowtap_cidr4_key);
  size_t n6 = cidr6_keys_.size() / sizeof(struct flowtap_cidr6_key);
  int err = bpf_map__set_max_entries(skel_->maps.cidr4, std::max<size_t>(1, n4));
  if (err == 0) err = bpf_map__set_max_entries(skel_->maps.cidr6, std::max<size_t>(1, n6));
  if (err != 0) Fail("configure", -err, "sizing the CIDR filter maps failed " + Describe(-err));
}

// Owner thread, after load and before attach.
void Probe::FillCidrMaps() {
  struct {
    struct bpf_map *map;
    const std::vector<uint8_t> &keys;
    const std::vector<uint8_t> &values;
    size_t key_size;
    const char *what;
  } tries[] = {
      {skel_->maps.cidr4, cidr4_keys_, cidr4_values_, sizeof(struct flowtap_cidr4_key), "IPv4"},
      {skel_->maps.cidr6, cidr6_keys_, cidr6_values_, sizeof(struct flowtap_cidr6_key), "IPv6"},
  };
  for (const auto &t : tries) {
    for (size_t i = 0; i * t.key_size < t.keys.size(); i++) {
      int err = bpf_map__update_elem(t.map, &t.keys[i * t.key_size], t.key_size, &t.values[i * sizeof(uint32_t)],
                                     sizeof(uint32_t), BPF_ANY);
      if (err != 0)
        Fail("filters", -err, std::string("filling the ") + t.what + " CIDR filter failed " + Describe(-err));
    }
  }
}

// --- socket programs (bpf/sock.h) -----------------------------------------

namespace {

// True unless the kernel lacks program type `type` / map type `type`. A
// probe that cannot tell (it failed) counts as yes: the load then reports
// the real error.
bool HasProgType(enum bpf_prog_type type) { return libbpf_probe_bpf_prog_type(type, nullptr) != 0; }
bool HasMapType(enum bpf_map_type type) { return libbpf_probe_bpf_map_type(type, nullptr) != 0; }

// True unless a program of `type` (attached as `attach`) may not call helper
// `id`, with the privileges this process has. The verifier checks that a
// helper is allowed before its arguments, so a call with none is enough; it
// says "unknown func" / "invalid func" on older kernels and "program of
// this type cannot use helper" on newer ones (which libbpf 1.1's probe does
// not recognise), and some helpers need CAP_PERFMON besides CAP_BPF.
bool HasHelper(enum bpf_prog_type type, enum bpf_attach_type attach, enum bpf_func_id id) {
  struct bpf_insn insns[] = {
      {BPF_JMP | BPF_CALL, 0, 0, 0, static_cast<__s32>(id)},
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  std::vector<char> log(4096);
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach, .log_level = 1,
              .log_size = static_cast<__u32>(log.size()), .log_buf = log.data());
  int fd = bpf_prog_load(type, "flowtap_probe", "GPL", insns, sizeof insns / sizeof insns[0], &opts);
  if (fd >= 0) {
    close(fd);
    return true;
  }
  const char *text = log.data();
  return strstr(text, "unknown func ") == nullptr && strstr(text, "invalid func ") == nullptr &&
         strstr(text, "cannot use helper") == nullptr;
}

}  // namespace

// Owner thread, between open and load. Turns off (rodata switch, autoload)
// each part of bpf/sock.h this kernel, with this process's privileges,
// cannot run, and notes what that leaves out.
void Probe::ConfigureSockets() {
  auto *ro = skel_->rodata;
  const auto skb = BPF_PROG_TYPE_CGROUP_SKB, addr = BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
             sock = BPF_PROG_TYPE_CGROUP_SOCK;
  const auto egress = BPF_CGROUP_INET_EGRESS, connect = BPF_CGROUP_INET4_CONNECT,
             bind = BPF_CGROUP_INET4_POST_BIND;
  bool process = HasMapType(BPF_MAP_TYPE_SK_STORAGE) && HasProgType(addr) &&
                 HasHelper(skb, egress, BPF_FUNC_sk_storage_get) &&
                 HasHelper(addr, connect, BPF_FUNC_sk_storage_get) &&
                 HasHelper(addr, connect, BPF_FUNC_get_current_pid_tgid) &&
                 HasHelper(sock, bind, BPF_FUNC_sk_storage_get) &&
                 HasHelper(sock, bind, BPF_FUNC_get_current_pid_tgid);
  if (!process) {
    ro->cfg_process = 0;
    left_out_.push_back({"socket storage, or bpf_get_current_pid_tgid in cgroup/connect and cgroup/post_bind programs",
                         "no process on flows, and no outgoing handshake time or SYN count"});
  }
  if (process && !(HasHelper(addr, connect, BPF_FUNC_get_current_comm) &&
                   HasHelper(sock, bind, BPF_FUNC_get_current_comm))) {
    ro->cfg_comm = 0;
    left_out_.push_back({"bpf_get_current_comm in cgroup/connect and cgroup/post_bind programs (it needs CAP_PERFMON)",
                         "the process name as it was at connect() or bind(): it is read from /proc/<pid>/comm when "
                         "the flow is reported (after an exec(), the new program's)"});
  }
  if (process && !HasHelper(skb, egress, BPF_FUNC_get_listener_sock)) {
    ro->cfg_listener = 0;
    left_out_.push_back({"bpf_get_listener_sock in cgroup_skb programs", "no process on incoming flows"});
  }
  if (!HasHelper(skb, egress, BPF_FUNC_tcp_sock)) {
    ro->cfg_tcp_stats = 0;
    left_out_.push_back({"bpf_tcp_sock in cgroup_skb programs", "no TCP statistics (bytes, segments, RTT) on flow ends"});
  }
  if (!HasProgType(BPF_PROG_TYPE_SOCK_OPS)) {
    ro->cfg_sockops = 0;
    left_out_.push_back({"sockops programs", "no handshake time on incoming flows"});
  }
  if (ro->cfg_process == 0 || ro->cfg_sockops == 0 ||
      !HasHelper(BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, BPF_FUNC_sock_ops_cb_flags_set) ||
      !HasHelper(sock, BPF_CGROUP_INET_SOCK_RELEASE, BPF_FUNC_sk_storage_get) ||
      !HasHelper(BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_GETSOCKOPT, BPF_FUNC_sk_storage_get)) {
    ro->cfg_attempts = 0;
    left_out_.push_back({"socket storage with sockops callbacks, cgroup/sock_release and cgroup/getsockopt",
                         "no records of failed connection attempts"});
  }
  for (struct bpf_program *prog : {skel_->progs.flowtap_connect4, skel_->progs.flowtap_connect6,
                                   skel_->progs.flowtap_post_bind4, skel_->progs.flowtap_post_bind6})
    bpf_program__set_autoload(prog, ro->cfg_process != 0);
  bpf_program__set_autoload(skel_->progs.flowtap_sockops, ro->cfg_sockops != 0);
  bpf_program__set_autoload(skel_->progs.flowtap_sock_release, ro->cfg_attempts != 0);
  bpf_program__set_autoload(skel_->progs.flowtap_getsockopt, ro->cfg_attempts != 0);
}

// Owner thread, after the cgroup_skb programs are attached. Attaches the
// socket programs that were loaded, with bpf_link like those.
void Probe::AttachSockets(const std::string &cgroup_path) {
  struct bpf_program *progs[] = {skel_->progs.flowtap_connect4, skel_->progs.flowtap_connect6,
                                 skel_->progs.flowtap_post_bind4, skel_->progs.flowtap_post_bind6,
                                 skel_->progs.flowtap_sockops, skel_->progs.flowtap_sock_release,
                                 skel_->progs.flowtap_getsockopt};
  for (struct bpf_program *prog : progs) {
    if (!bpf_program__autoload(prog)) continue;
    struct bpf_link *link = bpf_program__attach_cgroup(prog, cgroup_fd_);
    if (link == nullptr) {
      int e = errno;
      std::string what = std::string("attaching ") + bpf_program__section_name(prog) + " to cgroup " + cgroup_path;
      if (e == EPERM || e == EACCES)
        Fail("attach_sock", e, what + " was refused (" + ErrnoName(e) + "): flowtap needs CAP_NET_ADMIN");
      Fail("attach_sock", e, WithLogTail(what + " failed " + Describe(e)));
    }
    sock_links_.emplace_back(prog, link);
  }
}

std::vector<std::pair<std::string, ProgramStats>> Probe::SocketProgramStats() {
  if (!loaded_) return final_sock_stats_;
  std::vector<std::pair<std::string, ProgramStats>> out;
  for (const auto &l : sock_links_)
    out.emplace_back(bpf_program__section_name(l.first), ReadProgramStats(bpf_program__fd(l.first)));
  return out;
}

// --- poll thread --------------------------------------------------------

// Poll thread. Runs until Stop() sets the flag, or until polling fails; then
// drains, hands over the rest and calls on_done_ as its very last action.
void Probe::PollLoop() {
  int err = 0;
  const char *what = "";
  for (;;) {
    WaitForRoom();
    if (stop_.load(std::memory_order_acquire)) break;
    int n = ring_buffer__poll(rb_, poll_interval_ms_);
    // The kernel wakes this thread only once wakeup_bytes wait (bpf
    // cfg_wakeup_bytes); on a timeout, read whatever is there.
    if (n == 0) n = ring_buffer__consume(rb_);
    HandOver();  // never hold records past the poll that read them
    if (n < 0 && n != -EINTR) {
      err = -n;
      what = "reading the ring buffer failed ";
      break;
    }
  }
  if (err == 0 && !abandon_.load(std::memory_order_acquire)) {
    // Stop() detached both programs before setting the flag, so this drain
    // reads everything that will ever be in the ring buffer. It does not wait
    // on max_pending_bytes: what is left is bounded by the ring buffer's size.
    int n = ring_buffer__consume(rb_);
    HandOver();
    if (n < 0) {
      err = -n;
      what = "draining the ring buffer failed ";
    }
  }
  if (err != 0 && on_error_) on_error_(ProbeError("poll", err, what + Describe(err)));
  tail_.reset();
  batch_.reset();
  // Last: once on_done_ has run (the binding releases its thread-safe
  // function in it), the owner thread may join this thread and free the probe.
  if (on_done_) on_done_();
}

// Poll thread. Backpressure: while the consumer has more than
// max_pending_bytes_ not yet taken, stop reading the ring buffer. The kernel
// then keeps the records, and counts the ones it has no room for
// (ringbuf_full_*), instead of this process buffering without bound. Never
// waits once the stop flag is set.
void Probe::WaitForRoom() {
  if (pending_bytes_.load(std::memory_order_relaxed) <= max_pending_bytes_ ||
      stop_.load(std::memory_order_acquire))
    return;
  waits_.fetch_add(1, std::memory_order_relaxed);
  while (pending_bytes_.load(std::memory_order_relaxed) > max_pending_bytes_ &&
         !stop_.load(std::memory_order_acquire))
    std::this_thread::sleep_for(kPendingRecheck);
}

// Poll thread (inside ring_buffer__poll/consume). size is the ring-buffer
// record's length. Returning non-zero would abort the poll, so it never does.
int Probe::OnRecord(void *ctx, void *data, size_t size) {
  static_cast<Probe *>(ctx)->Append(static_cast<const uint8_t *>(data), size);
  return 0;
}

// Poll thread. Copies one record into the current batch, trimmed to its valid bytes.
void Probe::Append(const uint8_t *data, size_t size) {
  struct flowtap_hdr hdr;
  if (size < sizeof hdr) {
    bad_records_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  memcpy(&hdr, data, sizeof hdr);
  if (hdr.version != FLOWTAP_ABI_VERSION || hdr.size < sizeof hdr || hdr.size > size) {
    bad_records_.fetch_add(1, std::memory_order_relaxed);
    return;
  }

  size_t valid = hdr.size;  // bytes to copy from the ring buffer
  size_t copied = hdr.size; // bytes the record takes in the batch
  uint16_t dns_len = 0;
  if (hdr.type == FLOWTAP_EV_DNS) {
    // A DNS record is reserved at full size; only len bytes of data are
    // valid, so copy just those (rounded up to 8 to keep records aligned).
    constexpr size_t data_off = offsetof(struct flowtap_dns_event, data);
    if (hdr.size < data_off) {
      bad_records_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    memcpy(&dns_len, data + offsetof(struct flowtap_dns_event, len), sizeof dns_len);
    if (dns_len > FLOWTAP_DNS_MAX) dns_len = FLOWTAP_DNS_MAX;
    valid = data_off + dns_len;
    if (valid > hdr.size) {
      bad_records_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    copied = RoundUp8(valid);
  }

  if (!batch_) {
    batch_.reset(new Batch);
    batch_->bytes.reserve(kBatchReserveBytes);
  }
  std::vector<uint8_t> &bytes = batch_->bytes;
  size_t at = bytes.size();
  bytes.resize(at + copied);  // zero-fills the DNS padding
  memcpy(&bytes[at], data, valid);
  if (hdr.type == FLOWTAP_EV_DNS) {
    uint16_t size16 = static_cast<uint16_t>(copied);
    memcpy(&bytes[at + offsetof(struct flowtap_hdr, size)], &size16, sizeof size16);
    memcpy(&bytes[at + offsetof(struct flowtap_dns_event, len)], &dns_len, sizeof dns_len);
  }
  batch_->records++;

  if (bytes.size() >= kBatchHandOverBytes) {
    HandOver();
    // Inside the consume loop: waiting here stops the ring buffer's consumer
    // position, so the backpressure reaches the kernel mid-burst too.
    WaitForRoom();
  }
}

// Poll thread. Passes the current batch (if any) on: appended to the last
// parcel if the consumer has not taken it yet and it has room, else as a new
// parcel through the sink. Counts the outcome.
void Probe::HandOver() {
  if (!batch_ || batch_->records == 0) return;
  uint32_t records = batch_->records;
  size_t bytes = batch_->bytes.size();
  if (AppendToTail(*batch_)) {
    records_.fetch_add(records, std::memory_order_relaxed);
    batch_->bytes.clear();  // keeps its capacity for the next poll
    batch_->records = 0;
    return;
  }
  std::shared_ptr<Parcel> parcel = std::make_shared<Parcel>();
  parcel->batch_ = std::move(batch_);
  // Counted before the sink sees it: the consumer may take it at once.
  pending_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  if (on_batch_(parcel)) {
    batches_.fetch_add(1, std::memory_order_relaxed);
    records_.fetch_add(records, std::memory_order_relaxed);
    tail_ = std::move(parcel);
  } else {
    pending_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    dropped_batches_.fetch_add(1, std::memory_order_relaxed);
    dropped_records_.fetch_add(records, std::memory_order_relaxed);
    tail_.reset();
  }
}

// Poll thread. True when batch was copied onto the end of tail_'s batch.
// Records stay in ring-buffer order: tail_ is the newest parcel, and the
// consumer takes parcels in the order they were handed over.
bool Probe::AppendToTail(Batch &batch) {
  if (!tail_) return false;
  std::lock_guard<std::mutex> lock(tail_->mutex_);
  Batch *open = tail_->batch_.get();
  if (open == nullptr || open->bytes.size() + batch.bytes.size() > kBatchHandOverBytes)
    return false;  // taken already, or full
  open->bytes.insert(open->bytes.end(), batch.bytes.begin(), batch.bytes.end());
  open->records += batch.records;
  // Under the lock, so Take() subtracts exactly what was added.
  pending_bytes_.fetch_add(batch.bytes.size(), std::memory_order_relaxed);
  return true;
}

// Consumer thread.
std::unique_ptr<Batch> Probe::Take(Parcel &parcel) {
  std::unique_ptr<Batch> batch;
  {
    std::lock_guard<std::mutex> lock(parcel.mutex_);
    batch = std::move(parcel.batch_);
  }
  if (batch) pending_bytes_.fetch_sub(batch->bytes.size(), std::memory_order_relaxed);
  return batch;
}

// --- readers (owner thread) -----------------------------------------------

KernelCounters Probe::ReadKernelCounters() {
  if (!loaded_) return final_counters_;
  KernelCounters sums{};
  std::vector<uint64_t> per_cpu(static_cast<size_t>(num_cpus_));
  for (uint32_t key = 0; key < FLOWTAP_CNT__MAX; key++) {
    int err = bpf_map__lookup_elem(skel_->maps.counters, &key, sizeof key, per_cpu.data(),
                                   per_cpu.size() * sizeof(uint64_t), 0);
    if (err != 0) Fail("counters", -err, "reading the counter map failed " + Describe(-err));
    for (uint64_t v : per_cpu) sums[key] += v;
  }
  return sums;
}

UserCounters Probe::ReadUserCounters() const {
  return UserCounters{
      batches_.load(std::memory_order_relaxed),
      records_.load(std::memory_order_relaxed),
      dropped_batches_.load(std::memory_order_relaxed),
      dropped_records_.load(std::memory_order_relaxed),
      waits_.load(std::memory_order_relaxed),
      bad_records_.load(std::memory_order_relaxed),
  };
}

ProgramStats Probe::ReadProgramStats(int prog_fd) {
  struct bpf_prog_info info;
  memset(&info, 0, sizeof info);
  __u32 len = sizeof info;
  int err = bpf_obj_get_info_by_fd(prog_fd, &info, &len);
  if (err != 0) Fail("prog_info", -err, "reading the program info failed " + Describe(-err));
  return ProgramStats{info.run_time_ns, info.run_cnt};
}

ProgramStats Probe::IngressStats() {
  if (!loaded_) return final_ingress_;
  return ReadProgramStats(bpf_program__fd(skel_->progs.flowtap_ingress));
}

ProgramStats Probe::EgressStats() {
  if (!loaded_) return final_egress_;
  return ReadProgramStats(bpf_program__fd(skel_->progs.flowtap_egress));
}

uint32_t Probe::FlowTableSize() {
  if (!loaded_) return 0;
  int fd = bpf_map__fd(skel_->maps.flows);
  // Batched lookups read the hash table bucket by bucket, each under its
  // lock: an entry that stays in the table during the read is counted once,
  // however much the rest changes (a get_next_key walk restarts from the
  // first key when the previous one goes away, and counts twice).
  std::vector<struct flowtap_flow_key> keys(kFlowTableChunk);
  std::vector<struct flowtap_flow_value> values(kFlowTableChunk);
  uint32_t in_batch = 0, out_batch = 0, count = 0;
  for (bool first = true;; first = false) {
    __u32 n = kFlowTableChunk;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch, keys.data(),
                                   values.data(), &n, nullptr);
    int e = err != 0 ? errno : 0;
    if (err != 0 && e != ENOENT) {
      if (first && (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP)) return WalkFlowTable();
      Fail("flow_table", e, "reading the flow table failed " + Describe(e));
    }
    count += n;  // also valid with ENOENT: the last chunk
    if (e == ENOENT || count >= flow_table_entries_) break;
    in_batch = out_batch;
  }
  return std::min(count, flow_table_entries_);
}

// Owner thread. The fallback for kernels without batched lookups.
uint32_t Probe::WalkFlowTable() {
  int fd = bpf_map__fd(skel_->maps.flows);
  struct flowtap_flow_key keys[2];
  const void *prev = nullptr;
  uint32_t count = 0;
  // When the previous key was deleted meanwhile, get_next_key restarts from
  // the first one; stopping at max_entries bounds the walk.
  while (count < flow_table_entries_) {
    struct flowtap_flow_key *next = &keys[count & 1];
    if (bpf_map_get_next_key(fd, prev, next) != 0) {
      int e = errno;
      if (e == ENOENT) break;
      Fail("flow_table", e, "walking the flow table failed " + Describe(e));
    }
    count++;
    prev = next;
  }
  return count;
}

// Owner thread. With I and D the insert and delete counters before (1) and
// after (3) the read, and N the entries read: every entry live at the end
// was either read or inserted after the first read of the counters, so
// evictions by the end >= I1 - D3 - N; when nothing changed, it is exact.
uint64_t Probe::FlowTableEvictions() {
  if (!loaded_) return evictions_;
  KernelCounters before = ReadKernelCounters();
  uint64_t entries = FlowTableSize();
  KernelCounters after = ReadKernelCounters();
  uint64_t inserts = before[FLOWTAP_CNT_FLOW_TABLE_INSERT];
  uint64_t gone = after[FLOWTAP_CNT_FLOW_TABLE_DELETE] + entries;
  if (inserts > gone) evictions_ = std::max(evictions_, inserts - gone);
  return evictions_;
}

// --- cleanup: the reverse of Start ---------------------------------------

// Owner thread.
void Probe::Stop() {
  if (stopped_) return;
  stopped_ = true;
  Detach();  // first, before the stop flag: see Detach() for why
  // The poll thread sees the flag within one poll timeout, drains, hands over
  // its last parcels, calls on_done_ and returns. Nothing here waits for it:
  // the owner thread must stay free to take those parcels.
  stop_.store(true, std::memory_order_release);
}

// Owner thread. The house style orders shutdown stop flag → drain → join →
// destroy; destroying the links before the stop flag is on purpose: once
// detached, no program can reserve a new record, so the poll thread's final
// drain is complete and no record is freed unread with the ring buffer. (A
// program already running on another CPU at detach finishes in microseconds;
// the final consume runs up to one poll timeout later.)
void Probe::Detach() {
  for (auto &l : sock_links_) {
    bpf_link__destroy(l.second);
    l.second = nullptr;
  }
  bpf_link__destroy(egress_link_);
  egress_link_ = nullptr;
  bpf_link__destroy(ingress_link_);
  ingress_link_ = nullptr;
}

// Owner thread.
void Probe::Abandon() {
  abandon_.store(true, std::memory_order_release);  // before the stop flag it may set
  Stop();
  Join();
}

// Owner thread.
void Probe::Join() {
  if (thread_.joinable()) thread_.join();
}

// Owner thread.
void Probe::Destroy() {
  Stop();
  Join();
  tail_.reset();
  batch_.reset();
  if (loaded_) {
    // Keep the final values: nothing changes them once detached.
    try {
      final_counters_ = ReadKernelCounters();
      FlowTableEvictions();  // detached: exact now, and kept in evictions_
      final_ingress_ = IngressStats();
      final_egress_ = EgressStats();
      final_sock_stats_ = SocketProgramStats();
    } catch (const ProbeError &) {
      // Best effort: the last values read are only lost to later reads.
    }
    loaded_ = false;
  }
  ring_buffer__free(rb_);
  rb_ = nullptr;
  flowtap_bpf__destroy(skel_);
  skel_ = nullptr;
  if (cgroup_fd_ >= 0) close(cgroup_fd_);
  cgroup_fd_ = -1;
}

}  // namespace flowtap
