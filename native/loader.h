// loader.h — the libbpf side of the addon: open, configure, load and attach the
// flowtap programs to one cgroup, read the ring buffer on a poll thread, and
// hand whole batches of records to a sink. No N-API here: binding.cc is the only
// file that makes JS values (STYLE.md habit 5).
#ifndef FLOWTAP_NATIVE_LOADER_H
#define FLOWTAP_NATIVE_LOADER_H

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "flowtap.h"

struct flowtap_bpf;
struct ring_buffer;
struct bpf_link;

namespace flowtap {

struct ProbeOptions {
  std::string cgroup_path;      // a cgroup v2 directory; watched recursively
  uint32_t ring_buffer_bytes;   // power of two, multiple of the page size
  uint32_t flow_table_entries;  // max entries of the LRU flow table
};

// A failure of one step. step is one of "open_cgroup", "open", "configure",
// "load", "attach_ingress", "attach_egress", "ringbuf", "thread" (starting),
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

// Both sinks are called on the poll thread and must not block.
// BatchSink takes the batch; it returns false when it could not pass it on
// (the batch is then gone and counted as dropped).
using BatchSink = std::function<bool(std::unique_ptr<Batch> batch)>;
// Called at most once, when polling fails for good; the poll thread then ends.
using ErrorSink = std::function<void(const ProbeError &error)>;

struct UserCounters {
  uint64_t batches;                  // handed to the sink
  uint64_t records;                  // in those batches
  uint64_t handoff_dropped_batches;  // the sink refused them
  uint64_t handoff_dropped_records;
  uint64_t bad_records;  // wrong version or size: skipped
};

struct ProgramStats {
  uint64_t run_time_ns;  // 0 unless sysctl kernel.bpf_stats_enabled=1
  uint64_t run_count;
};

using KernelCounters = std::array<uint64_t, FLOWTAP_CNT__MAX>;

// One loaded and attached copy of the flowtap programs. All methods except the
// poll-thread internals run on the thread that owns the probe (the JS thread).
class Probe {
 public:
  // Owner thread. open → configure → load → attach → ring buffer → poll thread.
  // Throws ProbeError; whatever was set up is torn down again first.
  static std::unique_ptr<Probe> Start(const ProbeOptions &options, BatchSink on_batch,
                                      ErrorSink on_error);

  // Owner thread. Stop() then Destroy().
  ~Probe();
  Probe(const Probe &) = delete;
  Probe &operator=(const Probe &) = delete;

  // Owner thread; idempotent. Detaches both programs, stops the poll thread
  // and waits for it; the thread's last act is to drain the ring buffer and
  // hand over the final batch. Blocks for at most one poll timeout (50 ms)
  // plus the drain. Maps stay readable afterwards.
  void Stop();

  // Owner thread; idempotent. Stop(), keeps the final kernel counters and
  // program stats, then frees the ring buffer, the BPF object and the cgroup
  // fd. The readers below keep working on the kept values.
  void Destroy();

  // Owner thread. Per-CPU values summed over all possible CPUs. Throws ProbeError.
  KernelCounters ReadKernelCounters();
  // Any thread.
  UserCounters ReadUserCounters() const;
  // Owner thread. bpf_prog_info run_time_ns / run_cnt. Throws ProbeError.
  ProgramStats IngressStats();
  ProgramStats EgressStats();
  // Owner thread. Entries now in the flow table (0 once destroyed). Throws ProbeError.
  uint32_t FlowTableSize();

 private:
  Probe(BatchSink on_batch, ErrorSink on_error);

  void OpenCgroup(const std::string &path);      // owner thread
  void PollLoop();                                // poll thread
  static int OnRecord(void *ctx, void *data, size_t size);  // poll thread
  void Append(const uint8_t *data, size_t size);  // poll thread
  void HandOver();                                // poll thread
  ProgramStats ReadProgramStats(int prog_fd);     // owner thread

  const BatchSink on_batch_;
  const ErrorSink on_error_;
  int cgroup_fd_ = -1;
  int num_cpus_ = 0;
  uint32_t flow_table_entries_ = 0;
  struct flowtap_bpf *skel_ = nullptr;
  bool loaded_ = false;
  struct bpf_link *ingress_link_ = nullptr;
  struct bpf_link *egress_link_ = nullptr;
  struct ring_buffer *rb_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool stopped_ = false;  // owner thread only

  std::unique_ptr<Batch> batch_;  // poll thread only: the batch being filled

  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> records_{0};
  std::atomic<uint64_t> dropped_batches_{0};
  std::atomic<uint64_t> dropped_records_{0};
  std::atomic<uint64_t> bad_records_{0};

  // Kept by Destroy() so counters and stats outlive the BPF object.
  KernelCounters final_counters_{};
  ProgramStats final_ingress_{};
  ProgramStats final_egress_{};
};

}  // namespace flowtap

#endif  // FLOWTAP_NATIVE_LOADER_H
