// loader.h — the libbpf side of the addon: open, configure, load and attach the
// flowtap programs to one cgroup, read the ring buffer on a poll thread, and
// hand whole batches of records to a sink. No N-API here: binding.cc is the only
// file that makes JS values.
#ifndef FLOWTAP_NATIVE_LOADER_H
#define FLOWTAP_NATIVE_LOADER_H

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "flowtap.h"

struct flowtap_bpf;
struct ring_buffer;
struct bpf_link;
struct bpf_program;

namespace flowtap {

// The kernel's filter settings, byte for byte as user space computed them
// (src/kernel/filter.ts kernelFilters, where the include/exclude verdicts are
// worked out): the rodata values of bpf/flowtap.bpf.c and the entries of the
// two LPM tries. A flow left out never enters the flow table and is counted
// as "filtered".
struct KernelFilters {
  uint8_t filter;          // cfg_filter
  uint8_t directions;      // cfg_directions
  uint8_t port_filter;     // cfg_port_filter
  uint8_t cidr4_filter;    // cfg_cidr4_filter
  uint8_t cidr6_filter;    // cfg_cidr6_filter
  uint8_t cidr_unmatched;  // cfg_cidr_unmatched
  std::vector<uint8_t> port_skip;  // cfg_port_skip: FLOWTAP_PORT_SKIP_WORDS u64 words
  // struct flowtap_cidr{4,6}_key back to back, and one u32 verdict per key.
  std::vector<uint8_t> cidr4_keys;
  std::vector<uint8_t> cidr4_values;
  std::vector<uint8_t> cidr6_keys;
  std::vector<uint8_t> cidr6_values;
};

// Every value is given, checked by the caller (src/config/limits.ts holds the
// defaults and limits); nothing here has a default of its own.
struct ProbeOptions {
  std::string cgroup_path;      // a cgroup v2 directory; watched recursively
  uint32_t ring_buffer_bytes;   // a power of two; libbpf rounds it up to the page size
  uint32_t flow_table_entries;  // max entries of the LRU flow table
  // Bytes handed to the sink but not yet taken (Probe::Take). While more than
  // this is pending, the poll thread stops reading the ring buffer.
  uint64_t max_pending_bytes;
  // Records wait in the ring buffer until this many bytes are there (or the
  // poll timeout); 0 wakes the reader for every record.
  uint32_t wakeup_bytes;
  // The reader's poll timeout: with wakeup_bytes > 0, how long a record can
  // wait at low traffic. Also how long the poll thread takes to see a stop.
  uint32_t poll_interval_ms;
  KernelFilters filters;
};

// A failure of one step. step is one of "open_cgroup", "open", "configure",
// "load", "filters" (filling the CIDR maps), "attach_ingress", "attach_egress", "ringbuf", "thread" (starting),
// "poll" (the poll thread), "counters", "prog_info", "flow_table" (reads).
// err is a positive errno; what() is a sentence for the user.
class ProbeError : public std::runtime_error {
 public:
  ProbeError(const char *step, int err, const std::string &message)
      : std::runtime_error(message), step_(step), err_(err) {}
  const char *step() const noexcept { return step_; }
  int err() const noexcept { return err_; }

 private:
  const char *step_;
  int err_;
};

// "EPERM" for EPERM; "E<n>" for a number without a name.
std::string ErrnoName(int err);

// Whole records back to back, each starting with struct flowtap_hdr whose
// size field is the record's length in this buffer.
struct Batch {
  std::vector<uint8_t> bytes;
  uint32_t records = 0;
};

class Probe;

// One batch handed to the sink, until the consumer takes it (Probe::Take).
// Until then the poll thread may append later records to it (up to 256 KiB):
// under load every ring-buffer wake-up brings a few records, and this keeps
// them from becoming thousands of tiny batches while the consumer is busy.
// Shared by the poll thread and the consumer; all state is behind the mutex.
class Parcel {
 private:
  friend class Probe;
  std::mutex mutex_;
  std::unique_ptr<Batch> batch_;  // null once taken
};

// The sinks are called on the poll thread and must not block.
// BatchSink takes a new parcel; it returns false when it could not pass it on
// (its batch is then gone and counted as dropped).
using BatchSink = std::function<bool(std::shared_ptr<Parcel> parcel)>;
// Called at most once, when polling fails for good; the poll thread then ends.
using ErrorSink = std::function<void(const ProbeError &error)>;
// Called exactly once, as the poll thread's last action, after every batch
// and error was passed to the sinks. The poll thread touches nothing after it.
using DoneSink = std::function<void()>;

struct UserCounters {
  uint64_t batches;                  // parcels handed to the sink
  uint64_t records;                  // in those parcels
  uint64_t handoff_dropped_batches;  // the sink refused them
  uint64_t handoff_dropped_records;
  uint64_t handoff_waits;  // times the poll thread paused on max_pending_bytes
  uint64_t bad_records;    // wrong version or size: skipped
};

struct ProgramStats {
  uint64_t run_time_ns;  // 0 unless sysctl kernel.bpf_stats_enabled=1
  uint64_t run_count;
};

using KernelCounters = std::array<uint64_t, FLOWTAP_CNT__MAX>;

// A part of bpf/sock.h the running kernel cannot run: what is missing, and
// what flowtap's records are without because of it. Both are sentences.
struct LeftOut {
  std::string missing;
  std::string leaves_out;
};

// One loaded and attached copy of the flowtap programs. All methods except the
// poll-thread internals and Take() run on the thread that owns the probe (the
// JS thread).
//
// Shutdown order: Stop() (detach, stop flag) → the poll thread drains the ring
// buffer, hands over the last parcels, calls on_done and ends → Destroy()
// (join, free). Stop() never waits, so the owner thread stays free to take the
// last parcels.
class Probe {
 public:
  // Owner thread. open → configure → load → attach → ring buffer → poll thread.
  // Throws ProbeError; whatever was set up is torn down again first, and
  // on_done is never called.
  static std::unique_ptr<Probe> Start(const ProbeOptions &options, BatchSink on_batch,
                                      ErrorSink on_error, DoneSink on_done);

  // Owner thread. Destroy().
  ~Probe();
  Probe(const Probe &) = delete;
  Probe &operator=(const Probe &) = delete;

  // Owner thread; idempotent; does not wait. Detaches both programs and sets
  // the stop flag. The poll thread notices within one poll timeout,
  // drains the ring buffer, hands over the final parcels without waiting on
  // max_pending_bytes, calls on_done and ends. Maps stay readable.
  void Stop();

  // Owner thread; idempotent. Like Stop(), but the poll thread skips the
  // final drain (for environment teardown, where nobody takes parcels); then
  // waits for the thread. Bounded: the thread never waits on the consumer
  // once the stop flag is set.
  void Abandon();

  // Owner thread; idempotent. Stop(), waits for the poll thread, keeps the
  // final kernel counters and program stats, then frees the ring buffer, the
  // BPF object and the cgroup fd. The readers below keep working on the kept
  // values.
  void Destroy();

  // Consumer thread (the JS thread). Takes the parcel's batch (null if it was
  // taken already); from then on the poll thread no longer appends to it and
  // its bytes no longer count as pending.
  std::unique_ptr<Batch> Take(Parcel &parcel);

  // Owner thread. Per-CPU values summed over all possible CPUs. Throws ProbeError.
  KernelCounters ReadKernelCounters();
  // Any thread.
  UserCounters ReadUserCounters() const;
  // Owner thread. bpf_prog_info run_time_ns / run_cnt. Throws ProbeError.
  ProgramStats IngressStats();
  ProgramStats EgressStats();
  // Owner thread. The socket programs of bpf/sock.h that were loaded, by
  // section name ("cgroup/connect4", ...), with their stats. Throws ProbeError.
  std::vector<std::pair<std::string, ProgramStats>> SocketProgramStats();
  // Any thread. What this kernel could not run (empty when everything loaded).
  const std::vector<LeftOut> &LeftOutParts() const { return left_out_; }
  // Owner thread. Entries now in the flow table (0 once destroyed). Throws ProbeError.
  uint32_t FlowTableSize();
  // Owner thread. Flows the LRU flow table evicted to make room for others
  // (their end is never reported). The kernel cannot see an eviction, so it
  // counts inserts and deletes, and here evictions = inserts - deletes -
  // entries, the entries counted with batched lookups between two counter
  // reads. The result is a lower bound: exact when no flow began or ended
  // during the read, otherwise short by at most the flows that did (the next
  // read catches up). It never decreases. Throws ProbeError.
  uint64_t FlowTableEvictions();

 private:
  Probe(BatchSink on_batch, ErrorSink on_error, DoneSink on_done);

  void OpenCgroup(const std::string &path);      // owner thread
  void ConfigureFilters(const KernelFilters &filters);  // owner thread, before load
  void FillCidrMaps();                            // owner thread, after load
  uint32_t WalkFlowTable();                       // owner thread
  void Detach();                                  // owner thread
  void Join();                                    // owner thread
  void PollLoop();                                // poll thread
  static int OnRecord(void *ctx, void *data, size_t size);  // poll thread
  void Append(const uint8_t *data, size_t size);  // poll thread
  void HandOver();                                // poll thread
  bool AppendToTail(Batch &batch);                // poll thread
  void WaitForRoom();                             // poll thread
  ProgramStats ReadProgramStats(int prog_fd);     // owner thread
  void ConfigureSockets();                        // owner thread, before load
  void AttachSockets(const std::string &cgroup_path);  // owner thread, after attach

  const BatchSink on_batch_;
  const ErrorSink on_error_;
  const DoneSink on_done_;
  uint64_t max_pending_bytes_ = 0;
  int cgroup_fd_ = -1;
  int num_cpus_ = 0;
  uint32_t flow_table_entries_ = 0;
  int poll_interval_ms_ = 0;
  uint64_t evictions_ = 0;  // the largest FlowTableEvictions() result so far
  // CIDR map entries (keys back to back, u32 values), kept from configure to fill.
  std::vector<uint8_t> cidr4_keys_, cidr4_values_, cidr6_keys_, cidr6_values_;
  struct flowtap_bpf *skel_ = nullptr;
  bool loaded_ = false;
  struct bpf_link *ingress_link_ = nullptr;
  struct bpf_link *egress_link_ = nullptr;
  // bpf/sock.h: the socket programs attached (program, link), and what not.
  std::vector<std::pair<struct bpf_program *, struct bpf_link *>> sock_links_;
  std::vector<LeftOut> left_out_;
  std::vector<std::pair<std::string, ProgramStats>> final_sock_stats_;
  struct ring_buffer *rb_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> abandon_{false};  // set before stop_: skip the final drain
  bool stopped_ = false;  // owner thread only

  std::unique_ptr<Batch> batch_;   // poll thread only: the batch being filled
  std::shared_ptr<Parcel> tail_;   // poll thread only: the last parcel handed over
  // Bytes in parcels handed over and not yet taken: added by the poll thread
  // before a hand-over, subtracted by Take().
  std::atomic<uint64_t> pending_bytes_{0};

  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> records_{0};
  std::atomic<uint64_t> dropped_batches_{0};
  std::atomic<uint64_t> dropped_records_{0};
  std::atomic<uint64_t> waits_{0};
  std::atomic<uint64_t> bad_records_{0};

  // Kept by Destroy() so counters and stats outlive the BPF object.
  KernelCounters final_counters_{};
  ProgramStats final_ingress_{};
  ProgramStats final_egress_{};
};

}  // namespace flowtap

#endif  // FLOWTAP_NATIVE_LOADER_H
