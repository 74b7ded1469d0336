// binding.cc — the only file that includes napi.h and makes JS values. It
// checks the types of its arguments, turns loader failures into Errors
// with .code/.errno/.step, and carries batches from the poll thread to
// onBatch through one thread-safe function. The JS API it exports is the
// NativeBinding interface the TypeScript side declares.
#include <napi.h>

#include <time.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "flowtap.h"
#include "loader.h"

namespace {

// The TSFN queue is unbounded (0): the poll thread never blocks in it and
// never drops for lack of room. What bounds memory is maxPendingBytes: over
// it, the poll thread stops reading the ring buffer until JS catches up.
constexpr size_t kUnboundedQueue = 0;

const char *const kCounterNames[] = {FLOWTAP_COUNTER_NAMES};
static_assert(sizeof kCounterNames / sizeof kCounterNames[0] == FLOWTAP_CNT__MAX,
              "FLOWTAP_COUNTER_NAMES must name every enum flowtap_counter");

// JS thread. A loader failure as the Error the TypeScript side expects.
Napi::Error ToJsError(Napi::Env env, const flowtap::ProbeError &e) {
  Napi::Error error = Napi::Error::New(env, e.what());
  Napi::Object object = error.Value();
  object.Set("code", Napi::String::New(env, flowtap::ErrnoName(e.err())));
  object.Set("errno", Napi::Number::New(env, e.err()));
  object.Set("step", Napi::String::New(env, e.step()));
  return error;
}

// --- argument checks (JS thread) ------------------------------------------

// "got 1000" / "got a string" for a TypeError message.
std::string Got(Napi::Value value) {
  switch (value.Type()) {
    case napi_number: return "got " + value.ToString().Utf8Value();
    case napi_undefined: return "got undefined";
    case napi_null: return "got null";
    case napi_boolean: return "got a boolean";
    case napi_string: return "got a string";
    case napi_symbol: return "got a symbol";
    case napi_function: return "got a function";
    case napi_bigint: return "got a bigint";
    default: return "got an object";
  }
}

// True and *out set when value is a finite whole number.
bool GetInteger(Napi::Value value, double *out) {
  if (!value.IsNumber()) return false;
  double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) return false;
  *out = d;
  return true;
}

// The options arrive checked and complete (src/kernel/probe.ts probeOptions,
// with every default and limit from src/config/limits.ts): here only their
// types are checked, so that a wrong one is a TypeError naming it, never a
// silently truncated value.

// options.<name>: a string.
std::string StringOption(Napi::Object options, const char *name) {
  Napi::Value v = options.Get(name);
  if (!v.IsString()) throw Napi::TypeError::New(options.Env(), std::string("options.") + name + " must be a string, " + Got(v));
  return v.As<Napi::String>().Utf8Value();
}

// <what>.<name>: a whole number that fits the C type (0 to max).
double WholeOption(Napi::Object object, const std::string &what, const char *name, double max, const char *type) {
  Napi::Value v = object.Get(name);
  double d;
  if (GetInteger(v, &d) && d >= 0 && d <= max) return d;
  throw Napi::TypeError::New(object.Env(), what + "." + name + " must be a " + type + " (a whole number from 0 to " +
                                               std::to_string(static_cast<unsigned long long>(max)) + "), " + Got(v));
}

uint32_t U32Option(Napi::Object object, const std::string &what, const char *name) {
  return static_cast<uint32_t>(WholeOption(object, what, name, 4294967295.0, "uint32"));
}

uint8_t U8Option(Napi::Object object, const std::string &what, const char *name) {
  return static_cast<uint8_t>(WholeOption(object, what, name, 255.0, "uint8"));
}

// <what>.<name>: a Buffer of whole `unit`-byte items, exactly `count` of them
// when count is not kAnyCount.
constexpr size_t kAnyCount = static_cast<size_t>(-1);
std::vector<uint8_t> BytesOption(Napi::Object object, const std::string &what, const char *name, size_t unit,
                                 size_t count = kAnyCount) {
  Napi::Value v = object.Get(name);
  if (v.IsBuffer()) {
    Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    if (b.Length() % unit == 0 && (count == kAnyCount || b.Length() == unit * count))
      return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
  }
  std::string size = count != kAnyCount ? "of " + std::to_string(unit * count) + " bytes"
                                        : "of a multiple of " + std::to_string(unit) + " bytes";
  throw Napi::TypeError::New(object.Env(), what + "." + name + " must be a Buffer " + size + ", " +
                                               (v.IsBuffer() ? "got " + std::to_string(v.As<Napi::Buffer<uint8_t>>().Length()) + " bytes" : Got(v)));
}

// options.filters: the kernel's filter settings (src/kernel/filter.ts kernelFilters).
flowtap::KernelFilters FiltersOption(Napi::Object options) {
  Napi::Value v = options.Get("filters");
  if (!v.IsObject() || v.IsArray() || v.IsFunction())
    throw Napi::TypeError::New(options.Env(), "options.filters must be an object, " + Got(v));
  Napi::Object o = v.As<Napi::Object>();
  const std::string what = "options.filters";
  flowtap::KernelFilters f;
  f.filter = U8Option(o, what, "filter");
  f.directions = U8Option(o, what, "directions");
  f.port_filter = U8Option(o, what, "portFilter");
  f.port_skip = BytesOption(o, what, "portSkip", sizeof(uint64_t), FLOWTAP_PORT_SKIP_WORDS);
  f.cidr4_filter = U8Option(o, what, "cidr4Filter");
  f.cidr6_filter = U8Option(o, what, "cidr6Filter");
  f.cidr_unmatched = U8Option(o, what, "cidrUnmatched");
  f.cidr4_keys = BytesOption(o, what, "cidr4Keys", sizeof(struct flowtap_cidr4_key));
  f.cidr4_values = BytesOption(o, what, "cidr4Values", sizeof(uint32_t), f.cidr4_keys.size() / sizeof(struct flowtap_cidr4_key));
  f.cidr6_keys = BytesOption(o, what, "cidr6Keys", sizeof(struct flowtap_cidr6_key));
  f.cidr6_values = BytesOption(o, what, "cidr6Values", sizeof(uint32_t), f.cidr6_keys.size() / sizeof(struct flowtap_cidr6_key));
  return f;
}

// --- the probe ----------------------------------------------------------

class ProbeWrap;

// One thread-safe-function call: a parcel (one batch), or the poll thread's failure.
struct Item {
  std::shared_ptr<flowtap::Parcel> parcel;
  std::unique_ptr<flowtap::ProbeError> error;
};

// The TSFN's context. It is separate from ProbeWrap because the TSFN can
// outlive it (a constructor that fails after creating the TSFN, or
// environment teardown); wrap is null then, and the TSFN only frees items.
struct Session {
  ProbeWrap *wrap = nullptr;
};

void CallJs(Napi::Env env, Napi::Function on_batch, Session *session, Item *item);
void FinalizeSession(Napi::Env env, void *, Session *session);
using Tsfn = Napi::TypedThreadSafeFunction<Session, Item, CallJs>;

// JS thread (GC finalizer of a batch Buffer).
void FreeBatch(Napi::Env, uint8_t *, flowtap::Batch *batch) { delete batch; }

class ProbeWrap : public Napi::ObjectWrap<ProbeWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Probe",
                       {
                           InstanceMethod<&ProbeWrap::Counters>("counters"),
                           InstanceMethod<&ProbeWrap::ProgramStats>("programStats"),
                           InstanceMethod<&ProbeWrap::FlowTableSize>("flowTableSize"),
                           InstanceMethod<&ProbeWrap::LeftOut>("leftOut"),
                           InstanceMethod<&ProbeWrap::Close>("close"),
                       });
  }

  // JS thread. new Probe(options): checks options, creates the TSFN, then
  // opens/loads/attaches through the loader, which starts the poll thread.
  explicit ProbeWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<ProbeWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject() || info[0].IsFunction())
      throw Napi::TypeError::New(env, "options must be an object, " +
                                          Got(info.Length() ? info[0] : env.Undefined()));
    Napi::Object options = info[0].As<Napi::Object>();
    flowtap::ProbeOptions probe_options;
    probe_options.cgroup_path = StringOption(options, "cgroupPath");
    probe_options.ring_buffer_bytes = U32Option(options, "options", "ringBufferBytes");
    probe_options.flow_table_entries = U32Option(options, "options", "flowTableEntries");
    probe_options.wakeup_bytes = U32Option(options, "options", "wakeupBytes");
    probe_options.poll_interval_ms = U32Option(options, "options", "pollIntervalMillis");
    probe_options.max_pending_bytes =
        static_cast<uint64_t>(WholeOption(options, "options", "maxPendingBytes", 9007199254740991.0, "safe integer"));
    probe_options.filters = FiltersOption(options);
    Napi::Value on_batch = options.Get("onBatch");
    if (!on_batch.IsFunction())
      throw Napi::TypeError::New(env, "options.onBatch must be a function, " + Got(on_batch));
    Napi::Value on_error = options.Get("onError");
    if (!on_error.IsUndefined() && !on_error.IsFunction())
      throw Napi::TypeError::New(env, "options.onError must be a function when given, " + Got(on_error));
    if (on_error.IsFunction()) on_error_ = Napi::Persistent(on_error.As<Napi::Function>());

    // Its one thread reference belongs to the poll thread, which releases it
    // as its last action (the done sink); only if the probe never started
    // does the constructor release it.
    std::unique_ptr<Session> session(new Session);
    tsfn_ = Tsfn::New(env, on_batch.As<Napi::Function>(), "flowtap.poll", kUnboundedQueue, 1,
                      session.get(), FinalizeSession, static_cast<void *>(nullptr));
    session_ = session.release();  // owned by the TSFN from here on

    // Poll thread. The sinks never touch JS values: they queue the item and
    // report whether the queue took it. With an unbounded queue, a refusal
    // means the TSFN is closing (environment teardown).
    Tsfn tsfn = tsfn_;
    flowtap::BatchSink batch_sink = [tsfn](std::shared_ptr<flowtap::Parcel> parcel) {
      Item *item = new Item{std::move(parcel), nullptr};
      if (tsfn.NonBlockingCall(item) == napi_ok) return true;
      delete item;  // napi_closing, ...
      return false;
    };
    flowtap::ErrorSink error_sink = [tsfn](const flowtap::ProbeError &error) {
      Item *item = new Item{nullptr, std::unique_ptr<flowtap::ProbeError>(new flowtap::ProbeError(error))};
      if (tsfn.NonBlockingCall(item) != napi_ok) delete item;
    };
    // Poll thread, last action. Once every queued item has been delivered,
    // the TSFN finalizer runs on the JS thread and calls Finished().
    flowtap::DoneSink done_sink = [tsfn] { tsfn.Release(); };

    try {
      probe_ = flowtap::Probe::Start(probe_options, std::move(batch_sink), std::move(error_sink),
                                     std::move(done_sink));
    } catch (const flowtap::ProbeError &e) {
      // No poll thread: release its reference here. The session's wrap is
      // still null, so the finalizer only frees the session.
      tsfn_.Release();
      session_ = nullptr;
      throw ToJsError(env, e);
    }
    session_->wrap = this;
    // An attached probe is a live handle: it stays reachable until close()
    // completes, like a listening server, even if JS drops it.
    self_ = Napi::Persistent(info.This().As<Napi::Object>());
    // Registered after the TSFN, so it runs before the TSFN's own teardown
    // (cleanup hooks run in reverse order): the process exiting detaches too.
    napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
    hook_registered_ = true;
  }

  // JS thread (GC finalizer or environment teardown).
  ~ProbeWrap() override {
    if (session_ != nullptr) session_->wrap = nullptr;
    if (hook_registered_) napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    // probe_'s destructor stops and destroys whatever is still running.
  }

  // JS thread. Turns one queued item into a JS call.
  void Deliver(Napi::Env env, Napi::Function on_batch, Item &item) {
    try {
      if (item.parcel) {
        // Taking it also ends the poll thread's appending to it and subtracts
        // its bytes from the pending ones, even if onBatch then throws.
        std::unique_ptr<flowtap::Batch> batch = probe_->Take(*item.parcel);
        item.parcel.reset();
        if (!batch) return;
        uint32_t records = batch->records;
        // Zero copy: the Buffer owns the batch and frees it when collected.
        Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::NewOrCopy(
            env, batch->bytes.data(), batch->bytes.size(), FreeBatch, batch.get());
        batch.release();
        on_batch.Call({buffer, Napi::Number::New(env, records)});
      } else if (item.error && !on_error_.IsEmpty()) {
        on_error_.Call({ToJsError(env, *item.error).Value()});
      }
    } catch (const Napi::Error &e) {
      // A throwing callback is a bug to surface as 'uncaughtException', as if
      // it had thrown at top level. Left to the TSFN, Node would only print a
      // deprecation warning (DEP0168) and carry on.
      napi_fatal_exception(env, e.Value());
    }
  }

  // JS thread, from the TSFN finalizer: the poll thread released the TSFN as
  // its last action and every queued batch has been passed to onBatch. Joins
  // the (finished or finishing) poll thread, frees the ring buffer and BPF
  // object, resolves close().
  void Finished(Napi::Env env) {
    session_ = nullptr;
    probe_->Destroy();
    state_ = State::kClosed;
    if (hook_registered_) {
      napi_remove_env_cleanup_hook(env, OnEnvCleanup, this);
      hook_registered_ = false;
    }
    if (deferred_ != nullptr) {
      // Plain N-API: during environment teardown this may fail, and must not throw.
      napi_value undefined;
      if (napi_get_undefined(env, &undefined) == napi_ok) napi_resolve_deferred(env, deferred_, undefined);
      deferred_ = nullptr;
    }
    self_.Reset();
  }

 private:
  enum class State { kOpen, kClosing, kClosed };

  // JS thread; never waits. Detach and stop flag (the loader's Stop()); the
  // poll thread then drains the ring buffer, queues the last batches and
  // releases the TSFN; the TSFN finalizer calls Finished() once JS has had
  // them all. Waiting here instead would block JS, and could deadlock: the
  // poll thread may be waiting for JS to take batches (maxPendingBytes).
  void Shutdown() {
    if (state_ != State::kOpen) return;
    state_ = State::kClosing;
    probe_->Stop();
  }

  // JS thread, at environment teardown (process exit or worker termination
  // without close()). JS runs no more callbacks, so nothing would take the
  // last batches: detach, stop and join the poll thread now, synchronously,
  // without the final drain; whatever is still queued is dropped (the TSFN
  // frees it, calling CallJs with a null env). The join is bounded: the
  // poll thread never waits on JS once the stop flag is set.
  static void OnEnvCleanup(void *arg) {
    ProbeWrap *self = static_cast<ProbeWrap *>(arg);
    self->hook_registered_ = false;
    if (self->state_ == State::kOpen) self->state_ = State::kClosing;
    self->probe_->Abandon();
  }

  // JS thread. counters(): kernel counters summed over CPUs,
  // flow_table_evictions (derived, see Probe::FlowTableEvictions), then ours.
  Napi::Value Counters(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    flowtap::KernelCounters kernel;
    uint64_t evictions;
    try {
      kernel = probe_->ReadKernelCounters();
      evictions = probe_->FlowTableEvictions();
    } catch (const flowtap::ProbeError &e) {
      throw ToJsError(env, e);
    }
    flowtap::UserCounters user = probe_->ReadUserCounters();
    Napi::Object out = Napi::Object::New(env);
    for (size_t i = 0; i < FLOWTAP_CNT__MAX; i++)
      out.Set(kCounterNames[i], Napi::Number::New(env, static_cast<double>(kernel[i])));
    out.Set("flow_table_evictions", Napi::Number::New(env, static_cast<double>(evictions)));
    out.Set("handoff_dropped_batches", Napi::Number::New(env, static_cast<double>(user.handoff_dropped_batches)));
    out.Set("handoff_dropped_records", Napi::Number::New(env, static_cast<double>(user.handoff_dropped_records)));
    out.Set("handoff_waits", Napi::Number::New(env, static_cast<double>(user.handoff_waits)));
    out.Set("batches", Napi::Number::New(env, static_cast<double>(user.batches)));
    out.Set("records", Napi::Number::New(env, static_cast<double>(user.records)));
    out.Set("bad_records", Napi::Number::New(env, static_cast<double>(user.bad_records)));
    return out;
  }

  // JS thread. programStats(): run time and count of each program.
  Napi::Value ProgramStats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    flowtap::ProgramStats ingress, egress;
    std::vector<std::pair<std::string, flowtap::ProgramStats>> sockets;
    try {
      ingress = probe_->IngressStats();
      egress = probe_->EgressStats();
      sockets = probe_->SocketProgramStats();
    } catch (const flowtap::ProbeError &e) {
      throw ToJsError(env, e);
    }
    auto stats = [env](const flowtap::ProgramStats &s) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("runTimeNs", Napi::Number::New(env, static_cast<double>(s.run_time_ns)));
      o.Set("runCount", Napi::Number::New(env, static_cast<double>(s.run_count)));
      return o;
    };
    Napi::Object out = Napi::Object::New(env);
    out.Set("ingress", stats(ingress));
    out.Set("egress", stats(egress));
    for (const auto &s : sockets) out.Set(s.first, stats(s.second));
    return out;
  }

  // JS thread. leftOut(): [{missing, leavesOut}] for each part of bpf/sock.h
  // this kernel cannot run.
  Napi::Value LeftOut(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    const std::vector<flowtap::LeftOut> &parts = probe_->LeftOutParts();
    Napi::Array out = Napi::Array::New(env, parts.size());
    for (uint32_t i = 0; i < parts.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("missing", Napi::String::New(env, parts[i].missing));
      o.Set("leavesOut", Napi::String::New(env, parts[i].leaves_out));
      out.Set(i, o);
    }
    return out;
  }

  // JS thread. flowTableSize(): entries now in the flow table.
  Napi::Value FlowTableSize(const Napi::CallbackInfo &info) {
    try {
      return Napi::Number::New(info.Env(), probe_->FlowTableSize());
    } catch (const flowtap::ProbeError &e) {
      throw ToJsError(info.Env(), e);
    }
  }

  // JS thread. close(): idempotent, never rejects; every call returns the
  // same promise, resolved after the last batch reached onBatch.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!closed_promise_.IsEmpty()) return closed_promise_.Value();
    napi_value promise;
    napi_deferred deferred;
    NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &deferred, &promise), Napi::Value());
    closed_promise_ = Napi::Persistent(Napi::Object(env, promise));
    if (state_ == State::kClosed) {
      napi_resolve_deferred(env, deferred, env.Undefined());
    } else {
      deferred_ = deferred;
      Shutdown();
    }
    return closed_promise_.Value();
  }

  std::unique_ptr<flowtap::Probe> probe_;
  Tsfn tsfn_;
  Session *session_ = nullptr;  // owned by the TSFN; null once it is finalized
  Napi::FunctionReference on_error_;
  Napi::ObjectReference self_;
  Napi::ObjectReference closed_promise_;
  napi_deferred deferred_ = nullptr;
  State state_ = State::kOpen;
  bool hook_registered_ = false;
};

// JS thread. env is null when the environment is torn down with items still
// queued: then the item is only freed.
void CallJs(Napi::Env env, Napi::Function on_batch, Session *session, Item *raw) {
  std::unique_ptr<Item> item(raw);
  if (static_cast<napi_env>(env) == nullptr || item == nullptr || session == nullptr ||
      session->wrap == nullptr)
    return;
  session->wrap->Deliver(env, on_batch, *item);
}

// JS thread. The TSFN is gone: released with every queued item delivered.
void FinalizeSession(Napi::Env env, void *, Session *session) {
  ProbeWrap *wrap = session->wrap;
  delete session;
  if (wrap != nullptr) wrap->Finished(env);
}

// --- module functions (JS thread) -----------------------------------------

// layout(): sizeof/offsetof of the records, for the layout test.
Napi::Value Layout(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  auto put = [&](const char *key, size_t value) {
    out.Set(key, Napi::Number::New(env, static_cast<double>(value)));
  };
#define FLOWTAP_SIZE(T) put(#T, sizeof(struct T))
#define FLOWTAP_OFFSET(T, F) put(#T "." #F, offsetof(struct T, F))
  FLOWTAP_SIZE(flowtap_hdr);
  FLOWTAP_OFFSET(flowtap_hdr, ts_ns);
  FLOWTAP_OFFSET(flowtap_hdr, type);
  FLOWTAP_OFFSET(flowtap_hdr, version);
  FLOWTAP_OFFSET(flowtap_hdr, size);
  FLOWTAP_SIZE(flowtap_flow_event);
  FLOWTAP_OFFSET(flowtap_flow_event, hdr);
  FLOWTAP_OFFSET(flowtap_flow_event, saddr);
  FLOWTAP_OFFSET(flowtap_flow_event, daddr);
  FLOWTAP_OFFSET(flowtap_flow_event, sport);
  FLOWTAP_OFFSET(flowtap_flow_event, dport);
  FLOWTAP_OFFSET(flowtap_flow_event, family);
  FLOWTAP_OFFSET(flowtap_flow_event, direction);
  FLOWTAP_OFFSET(flowtap_flow_event, close_reason);
  FLOWTAP_OFFSET(flowtap_flow_event, closed_by);
  FLOWTAP_OFFSET(flowtap_flow_event, cgroup_id);
  FLOWTAP_OFFSET(flowtap_flow_event, begin_ts_ns);
  FLOWTAP_OFFSET(flowtap_flow_event, cookie);
  FLOWTAP_OFFSET(flowtap_flow_event, flow_id);
  FLOWTAP_OFFSET(flowtap_flow_event, proc_ts_ns);
  FLOWTAP_OFFSET(flowtap_flow_event, pid);
  FLOWTAP_OFFSET(flowtap_flow_event, uid);
  FLOWTAP_OFFSET(flowtap_flow_event, comm);
  FLOWTAP_OFFSET(flowtap_flow_event, handshake_ns);
  FLOWTAP_OFFSET(flowtap_flow_event, syn_count);
  FLOWTAP_OFFSET(flowtap_flow_event, flags);
  FLOWTAP_OFFSET(flowtap_flow_event, bytes_sent);
  FLOWTAP_OFFSET(flowtap_flow_event, bytes_received);
  FLOWTAP_OFFSET(flowtap_flow_event, segs_out);
  FLOWTAP_OFFSET(flowtap_flow_event, segs_in);
  FLOWTAP_OFFSET(flowtap_flow_event, retrans_segs);
  FLOWTAP_OFFSET(flowtap_flow_event, srtt_us);
  FLOWTAP_OFFSET(flowtap_flow_event, min_rtt_us);
  FLOWTAP_SIZE(flowtap_dns_event);
  FLOWTAP_OFFSET(flowtap_dns_event, hdr);
  FLOWTAP_OFFSET(flowtap_dns_event, saddr);
  FLOWTAP_OFFSET(flowtap_dns_event, daddr);
  FLOWTAP_OFFSET(flowtap_dns_event, sport);
  FLOWTAP_OFFSET(flowtap_dns_event, dport);
  FLOWTAP_OFFSET(flowtap_dns_event, len);
  FLOWTAP_OFFSET(flowtap_dns_event, msg_len);
  FLOWTAP_OFFSET(flowtap_dns_event, flags);
  FLOWTAP_OFFSET(flowtap_dns_event, family);
  FLOWTAP_OFFSET(flowtap_dns_event, cgroup_id);
  FLOWTAP_OFFSET(flowtap_dns_event, data);
  FLOWTAP_SIZE(flowtap_cidr4_key);
  FLOWTAP_OFFSET(flowtap_cidr4_key, addr);
  FLOWTAP_SIZE(flowtap_cidr6_key);
  FLOWTAP_OFFSET(flowtap_cidr6_key, addr);
#undef FLOWTAP_SIZE
#undef FLOWTAP_OFFSET
  put("FLOWTAP_DIR_INCOMING", FLOWTAP_DIR_INCOMING);
  put("FLOWTAP_DIR_OUTGOING", FLOWTAP_DIR_OUTGOING);
  put("FLOWTAP_VERDICT_REPORT", FLOWTAP_VERDICT_REPORT);
  put("FLOWTAP_VERDICT_SKIP", FLOWTAP_VERDICT_SKIP);
  put("cfg_port_skip", FLOWTAP_PORT_SKIP_WORDS * sizeof(uint64_t));
  put("FLOWTAP_DNS_MAX", FLOWTAP_DNS_MAX);
  put("FLOWTAP_DNS_QUERY_MAX", FLOWTAP_DNS_QUERY_MAX);
  put("FLOWTAP_COMM_LEN", FLOWTAP_COMM_LEN);
  put("FLOWTAP_EV_FLOW_ATTEMPT", FLOWTAP_EV_FLOW_ATTEMPT);
  put("FLOWTAP_ATTEMPT_REFUSED", FLOWTAP_ATTEMPT_REFUSED);
  put("FLOWTAP_ATTEMPT_UNREACHABLE", FLOWTAP_ATTEMPT_UNREACHABLE);
  put("FLOWTAP_ATTEMPT_TIMED_OUT", FLOWTAP_ATTEMPT_TIMED_OUT);
  put("FLOWTAP_ATTEMPT_ABANDONED", FLOWTAP_ATTEMPT_ABANDONED);
  return out;
}

uint64_t Nanoseconds(const struct timespec &ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// clockAnchor(): a REALTIME reading and the BOOTTIME at the same instant, to
// turn the records' boot-time stamps into wall-clock time. REALTIME is read
// between two BOOTTIME reads; of three tries the tightest pair wins.
Napi::Value ClockAnchor(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint64_t best_gap = std::numeric_limits<uint64_t>::max(), realtime = 0, boottime = 0;
  for (int i = 0; i < 3; i++) {
    struct timespec before, real, after;
    clock_gettime(CLOCK_BOOTTIME, &before);
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_BOOTTIME, &after);
    uint64_t gap = Nanoseconds(after) - Nanoseconds(before);
    if (gap < best_gap) {
      best_gap = gap;
      realtime = Nanoseconds(real);
      boottime = Nanoseconds(before) + gap / 2;
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("realtimeNs", Napi::BigInt::New(env, realtime));
  out.Set("boottimeNs", Napi::BigInt::New(env, boottime));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, FLOWTAP_ABI_VERSION));
  Napi::Array names = Napi::Array::New(env, FLOWTAP_CNT__MAX);
  for (uint32_t i = 0; i < FLOWTAP_CNT__MAX; i++) names.Set(i, Napi::String::New(env, kCounterNames[i]));
  exports.Set("counterNames", names);
  exports.Set("layout", Napi::Function::New(env, Layout, "layout"));
  exports.Set("clockAnchor", Napi::Function::New(env, ClockAnchor, "clockAnchor"));
  exports.Set("Probe", ProbeWrap::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(flowtap, Init)
