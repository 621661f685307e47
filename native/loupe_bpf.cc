// The thin loader: open, load and attach Loupe's BPF objects, fill their maps,
// and drain the ring buffer on a thread of its own. Records are handed to
// JavaScript in batches (u32 length + bytes each), never one callback per
// event; decoding and policy stay in TypeScript.
#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

// A batch is handed over when it reaches this size or when a poll times out.
constexpr size_t kBatchBytes = 1 << 20;
// Frequent drains cost the watched service, though they run on another CPU:
// at 2,000 requests/s a hello server's p50 was 1.0 µs over the kernel side's
// own cost with a 50 ms poll (so too with a consumer that dropped every batch
// unread), 0.2 µs at 200 ms, none at 500 ms (BENCHMARKS.md, "the drain
// interval"; why, this VM's missing hardware counters did not tell). Heavier
// traffic is drained sooner anyway, by the wakeup at a sixteenth of the
// buffer (bpf/common.bpf.h). Spans come out at most this much later.
constexpr int kPollMs = 200;
// Batches JS has not taken yet; past this the drain thread waits and the
// kernel side counts what the full ring buffer refuses (visible loss).
constexpr size_t kMaxQueuedBatches = 256;

std::string errnoText(int err) {
  err = err < 0 ? -err : err;
  std::string text = strerror(err);
  if (err == EPERM || err == EACCES)
    text += " (loading BPF needs root or CAP_BPF + CAP_PERFMON; with kernel lockdown some helpers are refused)";
  return text;
}

int printLibbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
  // libbpf's own messages (verifier logs) go to stderr for warnings and errors only.
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, fmt, args);
}

class Agent : public Napi::ObjectWrap<Agent> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "Agent", {
      InstanceMethod("load", &Agent::Load),
      InstanceMethod("attach", &Agent::Attach),
      InstanceMethod("attachUprobe", &Agent::AttachUprobe),
      InstanceMethod("detachLinks", &Agent::DetachLinks),
      InstanceMethod("loadOptional", &Agent::LoadOptional),
      InstanceMethod("attachCgroup", &Agent::AttachCgroup),
      InstanceMethod("attachSkMsg", &Agent::AttachSkMsg),
      InstanceMethod("mapLookup", &Agent::MapLookup),
      InstanceMethod("adoptSockets", &Agent::AdoptSockets),
      InstanceMethod("mapUpdate", &Agent::MapUpdate),
      InstanceMethod("selectPid", &Agent::SelectPid),
      InstanceMethod("takePending", &Agent::TakePending),
      InstanceMethod("takeReexec", &Agent::TakeReexec),
      InstanceMethod("markPending", &Agent::MarkPending),
      InstanceMethod("mapDelete", &Agent::MapDelete),
      InstanceMethod("start", &Agent::Start),
      InstanceMethod("stop", &Agent::Stop),
      InstanceMethod("close", &Agent::Close),
      InstanceMethod("programs", &Agent::Programs),
    });
    exports.Set("Agent", cls);
    exports.Set("clocks", Napi::Function::New(env, Clocks));
    exports.Set("programTypes", Napi::Function::New(env, ProgramTypes));
    exports.Set("pinThreads", Napi::Function::New(env, PinThreads));
    exports.Set("sockhashCheck", Napi::Function::New(env, SockhashCheck));
    exports.Set("conntrackOther", Napi::Function::New(env, ConntrackOther));
    libbpf_set_print(printLibbpf);
    return exports;
  }

  explicit Agent(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Agent>(info) {}
  ~Agent() { Shutdown(); }

 private:
  std::vector<bpf_object*> objects_;
  // Links by id: an id lets a caller detach what it attached for one process.
  std::map<uint32_t, bpf_link*> links_;
  uint32_t nextLink_ = 1;
  // Links being destroyed in the background (detachLinks), joined at shutdown.
  std::vector<std::thread> reaping_;

  uint32_t Keep(bpf_link* link) {
    links_[nextLink_] = link;
    return nextLink_++;
  }
  std::vector<std::string> attached_;
  // sk_msg programs attached to a sockhash (no bpf_link for those in libbpf 1.1): prog fd, map fd.
  std::vector<std::pair<int, int>> msgAttached_;
  ring_buffer* ring_ = nullptr;
  std::thread drain_;
  std::atomic<bool> running_{false};
  Napi::ThreadSafeFunction deliver_;
  std::vector<uint8_t>* batch_ = nullptr;
  // A pid bitmap the kernel side changes too, mmapped at first use.
  struct PidBits {
    const char* map;
    uint64_t* bits = nullptr;
    size_t words = 0;
  };
  PidBits selected_{"loupe_pids"};
  PidBits pending_{"loupe_pending"};
  PidBits reexec_{"loupe_reexec"};

  // The word of `pid` in a pid bitmap, and its bit.
  std::pair<uint64_t*, uint64_t> PidBit(Napi::Env env, PidBits& b, uint32_t pid) {
    if (!b.bits) {
      bpf_map* map = FindMap(b.map);
      if (!map) throw Napi::Error::New(env, std::string("no BPF map named ") + b.map);
      b.words = bpf_map__max_entries(map);
      void* at = mmap(nullptr, b.words * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
      if (at == MAP_FAILED) throw Napi::Error::New(env, std::string("cannot mmap ") + b.map + ": " + errnoText(errno));
      b.bits = static_cast<uint64_t*>(at);
    }
    if (pid / 64 >= b.words) throw Napi::Error::New(env, "pid " + std::to_string(pid) + " is beyond the kernel's limit");
    return {&b.bits[pid / 64], uint64_t{1} << (pid % 64)};
  }

  bpf_map* FindMap(const std::string& name) {
    for (auto* obj : objects_) {
      bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
      if (map) return map;
    }
    return nullptr;
  }

  // load([paths], ringBytes): open every object; a map an earlier object
  // already has (same name) is shared, not created again.
  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!objects_.empty()) throw Napi::Error::New(env, "load: already loaded");
    Napi::Array paths = info[0].As<Napi::Array>();
    uint32_t ringBytes = info[1].As<Napi::Number>().Uint32Value();
    for (uint32_t i = 0; i < paths.Length(); i++) {
      std::string path = paths.Get(i).As<Napi::String>();
      // The verifier gives up with EAGAIN when a signal is pending (a profiler's
      // SIGPROF, say): such a load is tried again, from a fresh open.
      for (int attempt = 1;; attempt++) {
        int err = LoadOne(env, path, ringBytes);
        if (err == 0) break;
        if (err != -EAGAIN || attempt == 5) {
          Shutdown();
          throw Napi::Error::New(env, "cannot load BPF object " + path + ": " + errnoText(err) +
                                          " (the verifier's log, if any, is on stderr)");
        }
      }
    }
    return env.Undefined();
  }

  // loadOptional(path, ringBytes): load one more object whose programs the
  // agent can do without (other program types); "" when loaded, else why not.
  Napi::Value LoadOptional(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string path = info[0].As<Napi::String>();
    uint32_t ringBytes = info[1].As<Napi::Number>().Uint32Value();
    for (int attempt = 1;; attempt++) {
      int err = LoadOne(env, path, ringBytes);
      if (err == 0) return Napi::String::New(env, "");
      if (err != -EAGAIN || attempt == 5) return Napi::String::New(env, "cannot load " + path + ": " + errnoText(err));
    }
  }

  bpf_program* ProgramArg(const Napi::CallbackInfo& info) {
    std::string name = info[0].As<Napi::String>();
    for (auto* obj : objects_) {
      bpf_program* prog = bpf_object__find_program_by_name(obj, name.c_str());
      if (prog) return prog;
    }
    throw Napi::Error::New(info.Env(), "no BPF program named " + name);
  }

  // attachCgroup(program, cgroupDir): a sock_ops (or other cgroup) program on a cgroup v2 directory and all below it.
  Napi::Value AttachCgroup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* prog = ProgramArg(info);
    std::string dir = info[1].As<Napi::String>();
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) throw Napi::Error::New(env, "cannot open cgroup " + dir + ": " + errnoText(errno));
    bpf_link* link = bpf_program__attach_cgroup(prog, fd);
    int err = errno;
    close(fd);
    if (!link)
      throw Napi::Error::New(env, std::string("cannot attach ") + bpf_program__name(prog) + " to cgroup " + dir + ": " + errnoText(err));
    Keep(link);
    attached_.push_back(std::string(bpf_program__section_name(prog)) + ":" + dir);
    return env.Undefined();
  }

  // attachSkMsg(program, sockhash): an sk_msg verdict program on every socket in a sockmap/sockhash.
  Napi::Value AttachSkMsg(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* prog = ProgramArg(info);
    std::string mapName = info[1].As<Napi::String>();
    bpf_map* map = FindMap(mapName);
    if (!map) throw Napi::Error::New(env, "no BPF map named " + mapName);
    int progFd = bpf_program__fd(prog), mapFd = bpf_map__fd(map);
    if (bpf_prog_attach(progFd, mapFd, BPF_SK_MSG_VERDICT, 0))
      throw Napi::Error::New(env, std::string("cannot attach ") + bpf_program__name(prog) + " to " + mapName + ": " + errnoText(errno));
    msgAttached_.emplace_back(progFd, mapFd);
    attached_.push_back("sk_msg:" + mapName);
    return env.Undefined();
  }

  // Open one object, share the maps earlier objects have, load it. 0 or -errno;
  // errors that retrying cannot fix are thrown.
  int LoadOne(Napi::Env env, const std::string& path, uint32_t ringBytes) {
    {
      bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
      if (!obj) {
        int err = errno;
        Shutdown();
        throw Napi::Error::New(env, "cannot open BPF object " + path + ": " + errnoText(err));
      }
      bpf_map* map;
      bpf_object__for_each_map(map, obj) {
        bpf_map* shared = FindMap(bpf_map__name(map));
        if (shared) {
          int err = bpf_map__reuse_fd(map, bpf_map__fd(shared));
          if (err) {
            bpf_object__close(obj);
            Shutdown();
            throw Napi::Error::New(env, std::string("cannot share map ") + bpf_map__name(map) + ": " + errnoText(err));
          }
        } else if (bpf_map__type(map) == BPF_MAP_TYPE_RINGBUF) {
          bpf_map__set_max_entries(map, ringBytes);
        }
      }
      // The verifier gives up with EAGAIN when a signal arrives mid-load (a
      // profiler's SIGPROF every few ms): hold signals for this thread meanwhile.
      sigset_t all, old;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, &old);
      int err = bpf_object__load(obj);
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      if (err) {
        bpf_object__close(obj);
        return err;
      }
      objects_.push_back(obj);
    }
    return 0;
  }

  // attach(): every program by its section name (tracepoints attach themselves).
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    for (auto* obj : objects_) {
      bpf_program* prog;
      bpf_object__for_each_program(prog, obj) {
        std::string section = bpf_program__section_name(prog);
        // No target of their own: attachUprobe(), attachCgroup() and attachSkMsg() place them.
        if (section == "uprobe" || section == "uretprobe" || section == "sockops" || section == "sk_msg") continue;
        bpf_link* link = bpf_program__attach(prog);
        if (!link) {
          int err = errno;
          throw Napi::Error::New(env, std::string("cannot attach ") + bpf_program__name(prog) + " (" +
                                          bpf_program__section_name(prog) + "): " + errnoText(err) +
                                          (err == ENOENT ? " — is tracefs mounted at /sys/kernel/tracing?" : ""));
        }
        Keep(link);
        attached_.push_back(bpf_program__section_name(prog));
      }
    }
    return env.Undefined();
  }

  // attachUprobe(program, binary, symbol | offset, pid): a uprobe or uretprobe
  // (as the program's section says) on a function of an ELF file, for one
  // process or all (-1). An offset places it on any instruction (Go RETs).
  Napi::Value AttachUprobe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = info[0].As<Napi::String>();
    std::string binary = info[1].As<Napi::String>();
    int pid = info[3].As<Napi::Number>().Int32Value();
    bpf_program* prog = nullptr;
    for (auto* obj : objects_) {
      prog = bpf_object__find_program_by_name(obj, name.c_str());
      if (prog) break;
    }
    if (!prog) throw Napi::Error::New(env, "no BPF program named " + name);
    bool ret = std::string(bpf_program__section_name(prog)) == "uretprobe";
    std::string symbol;
    size_t offset = 0;
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
    if (info[2].IsString()) {
      symbol = info[2].As<Napi::String>();
      opts.func_name = symbol.c_str();
    } else {
      offset = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
    }
    bpf_link* link = bpf_program__attach_uprobe_opts(prog, pid, binary.c_str(), offset, &opts);
    if (!link) {
      int err = errno;
      throw Napi::Error::New(env, "cannot attach " + name + " to " + binary + " " +
                                      (symbol.empty() ? "+" + std::to_string(offset) : symbol) + ": " + errnoText(err));
    }
    uint32_t id = Keep(link);
    attached_.push_back(std::string(ret ? "uretprobe/" : "uprobe/") + binary + ":" + (symbol.empty() ? std::to_string(offset) : symbol));
    return Napi::Number::New(env, id);
  }

  // detachLinks([id...]): destroy these links (a process that ended) on a
  // thread of their own: each waits out an RCU grace period, and the JS
  // thread must go on draining meanwhile.
  Napi::Value DetachLinks(const Napi::CallbackInfo& info) {
    Napi::Array ids = info[0].As<Napi::Array>();
    std::vector<bpf_link*> gone;
    for (uint32_t i = 0; i < ids.Length(); i++) {
      auto it = links_.find(ids.Get(i).As<Napi::Number>().Uint32Value());
      if (it == links_.end()) continue;
      gone.push_back(it->second);
      links_.erase(it);
    }
    if (!gone.empty())
      reaping_.emplace_back([gone] { for (auto* link : gone) bpf_link__destroy(link); });
    return info.Env().Undefined();
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Array out = Napi::Array::New(info.Env(), attached_.size());
    for (size_t i = 0; i < attached_.size(); i++) out.Set(i, attached_[i]);
    return out;
  }

  bpf_map* MapArg(const Napi::CallbackInfo& info) {
    std::string name = info[0].As<Napi::String>();
    bpf_map* map = FindMap(name);
    if (!map) throw Napi::Error::New(info.Env(), "no BPF map named " + name);
    return map;
  }

  Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
    bpf_map* map = MapArg(info);
    auto key = info[1].As<Napi::Buffer<uint8_t>>();
    auto value = info[2].As<Napi::Buffer<uint8_t>>();
    int err = bpf_map__update_elem(map, key.Data(), key.Length(), value.Data(), value.Length(), BPF_ANY);
    if (err)
      throw Napi::Error::New(info.Env(), std::string("cannot update map ") + bpf_map__name(map) + ": " + errnoText(err));
    return info.Env().Undefined();
  }

  // selectPid(pid, on): set or clear the pid's bit in loupe_pids, a bitmap the
  // kernel side also changes (at fork and exit). Through the map mmapped, with
  // an atomic or/and on the word: a read-modify-write through the bpf syscall
  // could undo a bit the kernel side set in the same word meanwhile.
  Napi::Value SelectPid(const Napi::CallbackInfo& info) { return SetBit(info, selected_, info[1].As<Napi::Boolean>().Value()); }

  // takePending(pid): clear the pid's bit in loupe_pending (set by the kernel
  // side at exec with --exe) and say whether it was set.
  Napi::Value TakePending(const Napi::CallbackInfo& info) { return TakeBit(info, pending_); }

  // takeReexec(pid): clear the pid's bit in loupe_reexec (set by the kernel
  // side when a pending process exec'd again) and say whether it was set.
  Napi::Value TakeReexec(const Napi::CallbackInfo& info) { return TakeBit(info, reexec_); }

  // markPending(pid): set the pid's bit in loupe_pending again: the record of
  // the process's later exec decides, and what it did until then is its own.
  Napi::Value MarkPending(const Napi::CallbackInfo& info) { return SetBit(info, pending_, true); }

  Napi::Value SetBit(const Napi::CallbackInfo& info, PidBits& bits, bool on) {
    Napi::Env env = info.Env();
    auto [word, bit] = PidBit(env, bits, info[0].As<Napi::Number>().Uint32Value());
    if (on)
      __atomic_fetch_or(word, bit, __ATOMIC_SEQ_CST);
    else
      __atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST);
    return env.Undefined();
  }

  Napi::Value TakeBit(const Napi::CallbackInfo& info, PidBits& bits) {
    Napi::Env env = info.Env();
    auto [word, bit] = PidBit(env, bits, info[0].As<Napi::Number>().Uint32Value());
    return Napi::Boolean::New(env, (__atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST) & bit) != 0);
  }

  // adoptSockets(sockhash, pid, [fd...]): put another process's established
  // TCP sockets into a sockhash, keyed by socket cookie as sock_ops does for
  // new ones: connections opened before the agent get its sk_msg program too.
  // Each fd is borrowed with pidfd_getfd (the map keeps the socket, not the
  // fd). Returns how many went in; fds that are not established TCP sockets
  // are passed over.
  Napi::Value AdoptSockets(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = MapArg(info);
    int pid = info[1].As<Napi::Number>().Int32Value();
    Napi::Array fds = info[2].As<Napi::Array>();
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) throw Napi::Error::New(env, "pidfd_open " + std::to_string(pid) + ": " + errnoText(errno));
    uint32_t adopted = 0;
    for (uint32_t i = 0; i < fds.Length(); i++) {
      int fd = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fds.Get(i).As<Napi::Number>().Int32Value(), 0));
      if (fd < 0) continue;
      int type = 0, protocol = 0;
      tcp_info tcp{};
      socklen_t len = sizeof(type);
      uint64_t cookie = 0;
      socklen_t cookieLen = sizeof(cookie);
      socklen_t tcpLen = sizeof(tcp);
      bool ok = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM &&
                (len = sizeof(protocol), getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0) && protocol == IPPROTO_TCP &&
                getsockopt(fd, IPPROTO_TCP, TCP_INFO, &tcp, &tcpLen) == 0 && tcp.tcpi_state == 1 /* TCP_ESTABLISHED */ &&
                getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &cookieLen) == 0;
      if (ok) {
        uint64_t value = static_cast<uint64_t>(fd);  // the sockhash's values are u64: a socket fd going in
        if (bpf_map_update_elem(bpf_map__fd(map), &cookie, &value, BPF_ANY) == 0) adopted++;
      }
      close(fd);
    }
    close(pidfd);
    return Napi::Number::New(env, adopted);
  }

  // mapLookup(name, key, valueSize): the value as a Buffer, or null when absent.
  Napi::Value MapLookup(const Napi::CallbackInfo& info) {
    bpf_map* map = MapArg(info);
    auto key = info[1].As<Napi::Buffer<uint8_t>>();
    size_t size = bpf_map__value_size(map);
    auto value = Napi::Buffer<uint8_t>::New(info.Env(), size);
    int err = bpf_map__lookup_elem(map, key.Data(), key.Length(), value.Data(), size, 0);
    if (err) return info.Env().Null();
    return value;
  }

  Napi::Value MapDelete(const Napi::CallbackInfo& info) {
    bpf_map* map = MapArg(info);
    auto key = info[1].As<Napi::Buffer<uint8_t>>();
    int err = bpf_map__delete_elem(map, key.Data(), key.Length(), 0);
    return Napi::Boolean::New(info.Env(), err == 0);
  }

  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Agent*>(ctx);
    if (!self->batch_) {
      self->batch_ = new std::vector<uint8_t>();
      self->batch_->reserve(kBatchBytes + 8192);
    }
    uint32_t len = static_cast<uint32_t>(size);
    auto* b = self->batch_;
    b->insert(b->end(), reinterpret_cast<uint8_t*>(&len), reinterpret_cast<uint8_t*>(&len) + 4);
    b->insert(b->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
    // Stop consuming once the batch is full so it goes out before it grows further.
    return b->size() >= kBatchBytes ? 1 : 0;
  }

  void Flush() {
    if (!batch_ || batch_->empty()) return;
    std::vector<uint8_t>* batch = batch_;
    batch_ = nullptr;
    napi_status status = deliver_.BlockingCall(batch, [](Napi::Env env, Napi::Function fn, std::vector<uint8_t>* b) {
      auto buf = Napi::Buffer<uint8_t>::New(env, b->data(), b->size(),
                                            [](Napi::Env, uint8_t*, std::vector<uint8_t>* owned) { delete owned; }, b);
      fn.Call({buf});
    });
    if (status != napi_ok) delete batch;
  }

  // start(onBatch): drain on a thread; onBatch(Buffer) runs on the JS thread.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (running_) throw Napi::Error::New(env, "start: already running");
    bpf_map* events = FindMap("loupe_events");
    if (!events) throw Napi::Error::New(env, "start: no loupe_events ring buffer loaded");
    ring_ = ring_buffer__new(bpf_map__fd(events), OnRecord, this, nullptr);
    if (!ring_) throw Napi::Error::New(env, "cannot open the ring buffer: " + errnoText(errno));
    deliver_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "loupe-drain", kMaxQueuedBatches, 1);
    running_ = true;
    drain_ = std::thread([this] {
      // The kernel side wakes us only when much is waiting (see wakeup_flag in
      // bpf/common.bpf.h), so a poll that times out must still consume. After a
      // full batch more may be waiting: consume again before sleeping.
      bool full = false;
      while (running_) {
        if (!full) {
          int n = ring_buffer__poll(ring_, kPollMs);
          if (n < 0 && n != -EINTR) break;
        }
        ring_buffer__consume(ring_);
        full = batch_ && batch_->size() >= kBatchBytes;
        Flush();
      }
      ring_buffer__consume(ring_);  // what is still in the buffer at stop
      Flush();
      // The end marker: JS sees a null batch, knows nothing more comes, and calls close().
      deliver_.BlockingCall(static_cast<std::vector<uint8_t>*>(nullptr),
                            [](Napi::Env env, Napi::Function fn, std::vector<uint8_t>*) { fn.Call({env.Null()}); });
    });
    return env.Undefined();
  }

  // stop(): detach every program at once, then let the drain thread empty the
  // ring buffer; it ends with a null batch. Does not block the JS thread, which
  // must keep taking batches until then.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Detach();
    running_ = false;
    return info.Env().Undefined();
  }

  // close(): after the null batch (or without start): free everything. Idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Detach() {
    // Each tracepoint or uprobe detach waits out an RCU grace period (tens of
    // ms); one after another that made stop() take seconds. Side by side, they
    // take about one.
    std::vector<std::thread> detaching;
    for (auto& [id, link] : links_) detaching.emplace_back([link = link] { bpf_link__destroy(link); });
    for (auto& t : detaching) t.join();
    links_.clear();
    for (auto& t : reaping_) t.join();
    reaping_.clear();
    // Sockets in the sockhash keep the program until it is detached or the map is freed.
    for (auto& [progFd, mapFd] : msgAttached_) bpf_prog_detach2(progFd, mapFd, BPF_SK_MSG_VERDICT);
    msgAttached_.clear();
  }

  void Shutdown() {
    Detach();
    running_ = false;
    if (drain_.joinable()) {
      drain_.join();
      deliver_.Release();
    }
    if (ring_) ring_buffer__free(ring_);
    ring_ = nullptr;
    for (PidBits* b : {&selected_, &pending_, &reexec_}) {
      if (b->bits) munmap(b->bits, b->words * sizeof(uint64_t));
      b->bits = nullptr;
    }
    for (auto it = objects_.rbegin(); it != objects_.rend(); ++it) bpf_object__close(*it);
    objects_.clear();
    delete batch_;
    batch_ = nullptr;
  }

  // pinThreads(cpus): keep every thread of this process (V8's helpers, which
  // exist before any of our code runs, included) on these CPUs; threads made
  // later inherit it from their creator. How many threads were pinned.
  static Napi::Value PinThreads(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto list = info[0].As<Napi::Array>();
    cpu_set_t set;
    CPU_ZERO(&set);
    for (uint32_t i = 0; i < list.Length(); i++) {
      int64_t cpu = list.Get(i).As<Napi::Number>().Int64Value();
      if (cpu < 0 || cpu >= CPU_SETSIZE) throw Napi::RangeError::New(env, "pinThreads: CPU " + std::to_string(cpu) + " is out of range");
      CPU_SET(cpu, &set);
    }
    DIR* tasks = opendir("/proc/self/task");
    if (!tasks) throw Napi::Error::New(env, "cannot list /proc/self/task: " + std::string(strerror(errno)));
    uint32_t pinned = 0;
    int failure = 0;
    while (dirent* entry = readdir(tasks)) {
      if (entry->d_name[0] == '.') continue;
      pid_t tid = static_cast<pid_t>(strtol(entry->d_name, nullptr, 10));
      if (sched_setaffinity(tid, sizeof(set), &set) == 0) pinned++;
      else if (errno != ESRCH) failure = errno;  // ESRCH: the thread ended meanwhile
    }
    closedir(tasks);
    if (failure == EINVAL) throw Napi::Error::New(env, "cannot pin the agent's threads: none of those CPUs is allowed to it (a cgroup cpuset?)");
    if (failure) throw Napi::Error::New(env, "cannot pin the agent's threads: " + std::string(strerror(failure)));
    return Napi::Number::New(env, pinned);
  }

  // programTypes(): which of the program types Loupe uses this kernel can
  // load (libbpf loads a trivial program of each): said at start-up.
  static Napi::Value ProgramTypes(const Napi::CallbackInfo& info) {
    Napi::Object out = Napi::Object::New(info.Env());
    const std::pair<const char*, bpf_prog_type> types[] = {
        {"tracepoint", BPF_PROG_TYPE_TRACEPOINT}, {"raw_tracepoint", BPF_PROG_TYPE_RAW_TRACEPOINT},
        {"kprobe", BPF_PROG_TYPE_KPROBE},          {"sock_ops", BPF_PROG_TYPE_SOCK_OPS},
        {"sk_msg", BPF_PROG_TYPE_SK_MSG},
    };
    for (auto& [name, type] : types) out.Set(name, Napi::Boolean::New(info.Env(), libbpf_probe_bpf_prog_type(type, nullptr) == 1));
    return out;
  }

  // sockhashCheck(): does a TCP socket still read right once it is in a
  // sockhash? Kernels with commit 929e30f93125 ("bpf, sockmap: Fix FIONREAD
  // for sockmap"; 6.6.128+, 6.12.75+, 6.18.14+, 6.19+) answer FIONREAD from
  // the psock's own queue, 0 for a socket that only has an sk_msg program, and
  // can lose its readiness wakeup: nginx, Java NIO and .NET size their reads by
  // FIONREAD and stall, epoll runtimes may never wake. Tried on a loopback pair
  // of this process's own, in a sockhash of its own, so no other program's
  // socket is touched: the peer writes kProbeBytes, and the enrolled socket
  // must become readable (edge-triggered epoll, as Go and libuv wait) and say
  // them all in FIONREAD. Returns { fionread, readable, received, expected }
  // or { error }.
  static Napi::Value SockhashCheck(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    constexpr int kProbeBytes = 100;
    Napi::Object out = Napi::Object::New(env);
    int map = -1, listener = -1, client = -1, server = -1, ep = -1;
    auto cleanup = [&]() {
      for (int fd : {ep, server, client, listener, map})
        if (fd >= 0) close(fd);
    };
    auto fail = [&](const std::string& what) {
      out.Set("error", Napi::String::New(env, what + ": " + strerror(errno)));
      cleanup();
      return out;
    };
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addrLen = sizeof(addr);
    map = bpf_map_create(BPF_MAP_TYPE_SOCKHASH, "loupe_probe", sizeof(uint64_t), sizeof(uint64_t), 1, nullptr);
    if (map < 0) return fail("cannot create a sockhash");
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) || listen(listener, 1) ||
        getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &addrLen))
      return fail("cannot listen on loopback");
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0 || connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))) return fail("cannot connect on loopback");
    server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (server < 0) return fail("cannot accept on loopback");
    uint64_t key = 1, value = static_cast<uint64_t>(client);
    if (bpf_map_update_elem(map, &key, &value, BPF_ANY)) return fail("cannot put a socket in a sockhash");
    ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event want{};
    want.events = EPOLLIN | EPOLLET;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, client, &want)) return fail("cannot wait with epoll");
    char bytes[kProbeBytes];
    memset(bytes, 'x', sizeof(bytes));
    if (write(server, bytes, sizeof(bytes)) != kProbeBytes) return fail("cannot write on loopback");
    // Loopback delivers within the write; a second is for a loaded machine only.
    epoll_event got{};
    bool readable = epoll_wait(ep, &got, 1, 1000) == 1;
    int pending = -1;
    if (ioctl(client, FIONREAD, &pending)) pending = -1;
    // What a reader that does not trust FIONREAD gets: a non-blocking read.
    char sink[kProbeBytes * 2];
    ssize_t received = recv(client, sink, sizeof(sink), MSG_DONTWAIT);
    bpf_map_delete_elem(map, &key);
    cleanup();
    out.Set("fionread", Napi::Number::New(env, pending));
    out.Set("readable", Napi::Boolean::New(env, readable));
    out.Set("received", Napi::Number::New(env, static_cast<double>(received)));
    out.Set("expected", Napi::Number::New(env, kProbeBytes));
    return out;
  }

  // conntrackOther(family, src, sport, dst, dport, byOriginal): the host's
  // connection tracking entry whose REPLY direction is src:sport -> dst:dport
  // (TCP) — as a server that accepted a connection sees it, local -> remote —
  // or, with byOriginal, whose ORIGINAL direction is, as the client that
  // connected sees it. Asked over ctnetlink by exact tuple: one lookup in the
  // kernel's hash table, whatever the table's size (reading
  // /proc/net/nf_conntrack costs a pass over every entry). Returns the other
  // direction: { family, src, sport, dst, dport }; null when there is no entry
  // (no connection tracking, or none for this connection); { error } when the
  // kernel refuses the question. Addresses are 16 bytes, IPv4 in the first 4.
  static Napi::Value ConntrackOther(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int family = info[0].As<Napi::Number>().Int32Value() == 6 ? AF_INET6 : AF_INET;
    const size_t addrLen = family == AF_INET6 ? 16 : 4;
    Napi::Buffer<uint8_t> src = info[1].As<Napi::Buffer<uint8_t>>(), dst = info[3].As<Napi::Buffer<uint8_t>>();
    const uint16_t sport = htons(static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()));
    const uint16_t dport = htons(static_cast<uint16_t>(info[4].As<Napi::Number>().Uint32Value()));
    const bool byOriginal = info.Length() > 5 && info[5].ToBoolean().Value();
    const uint16_t asked = byOriginal ? CTA_TUPLE_ORIG : CTA_TUPLE_REPLY, wanted = byOriginal ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG;
    Napi::Object out = Napi::Object::New(env);
    auto fail = [&](const std::string& what) {
      out.Set("error", Napi::String::New(env, what + ": " + strerror(errno)));
      return out;
    };
    if (src.Length() < addrLen || dst.Length() < addrLen) {
      errno = EINVAL;
      return fail("address too short");
    }
    static int sock = -1;
    static uint32_t seq = 0;
    if (sock < 0) {
      sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
      if (sock < 0) return fail("cannot open a netfilter netlink socket");
      // A lost answer must not hold the agent's one thread: the next lookup skips stale answers by sequence.
      timeval timeout{0, 200000};
      setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    }
    alignas(nlmsghdr) char request[256] = {};
    size_t len = NLMSG_HDRLEN;
    auto attr = [&](uint16_t type, const void* data, size_t size) {
      nlattr* a = reinterpret_cast<nlattr*>(request + len);
      a->nla_type = type;
      a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + size);
      if (size) memcpy(reinterpret_cast<char*>(a) + NLA_HDRLEN, data, size);
      len += NLA_ALIGN(a->nla_len);
      return a;
    };
    auto close_nest = [&](nlattr* a) { a->nla_len = static_cast<uint16_t>(request + len - reinterpret_cast<char*>(a)); };
    nfgenmsg* gen = reinterpret_cast<nfgenmsg*>(request + len);
    gen->nfgen_family = static_cast<uint8_t>(family);
    gen->version = NFNETLINK_V0;
    len += NLMSG_ALIGN(sizeof(nfgenmsg));
    nlattr* tuple = attr(asked | NLA_F_NESTED, nullptr, 0);
    nlattr* ip = attr(CTA_TUPLE_IP | NLA_F_NESTED, nullptr, 0);
    attr(family == AF_INET6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, src.Data(), addrLen);
    attr(family == AF_INET6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, dst.Data(), addrLen);
    close_nest(ip);
    nlattr* proto = attr(CTA_TUPLE_PROTO | NLA_F_NESTED, nullptr, 0);
    const uint8_t tcp = IPPROTO_TCP;
    attr(CTA_PROTO_NUM, &tcp, 1);
    attr(CTA_PROTO_SRC_PORT, &sport, 2);
    attr(CTA_PROTO_DST_PORT, &dport, 2);
    close_nest(proto);
    close_nest(tuple);
    nlmsghdr* header = reinterpret_cast<nlmsghdr*>(request);
    header->nlmsg_len = static_cast<uint32_t>(len);
    header->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
    header->nlmsg_flags = NLM_F_REQUEST;
    header->nlmsg_seq = ++seq;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(sock, request, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) return fail("cannot ask conntrack");
    alignas(nlmsghdr) char answer[8192];
    for (;;) {
      ssize_t got = recv(sock, answer, sizeof(answer), 0);
      if (got < 0) return fail("no answer from conntrack");
      for (nlmsghdr* m = reinterpret_cast<nlmsghdr*>(answer); NLMSG_OK(m, static_cast<size_t>(got)); m = NLMSG_NEXT(m, got)) {
        if (m->nlmsg_seq != seq) continue;  // the late answer to an earlier, timed-out question
        if (m->nlmsg_type == NLMSG_ERROR) {
          int error = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(m))->error;
          if (error == ENOENT || error == 0) return env.Null();
          errno = error;
          return fail("conntrack refused the lookup");
        }
        // The entry: find the other direction's tuple, then its addresses and ports.
        auto walk = [](char* begin, size_t size, auto&& each) {
          for (size_t at = 0; at + NLA_HDRLEN <= size;) {
            nlattr* a = reinterpret_cast<nlattr*>(begin + at);
            if (a->nla_len < NLA_HDRLEN || at + a->nla_len > size) break;
            each(static_cast<uint16_t>(a->nla_type & NLA_TYPE_MASK), reinterpret_cast<char*>(a) + NLA_HDRLEN, a->nla_len - NLA_HDRLEN);
            at += NLA_ALIGN(a->nla_len);
          }
        };
        const size_t skip = NLMSG_ALIGN(sizeof(nfgenmsg));
        if (m->nlmsg_len < NLMSG_HDRLEN + skip) continue;
        uint8_t osrc[16] = {}, odst[16] = {};
        uint16_t osport = 0, odport = 0;
        bool found = false;
        walk(static_cast<char*>(NLMSG_DATA(m)) + skip, m->nlmsg_len - NLMSG_HDRLEN - skip, [&](uint16_t type, char* data, size_t size) {
          if (type != wanted) return;
          walk(data, size, [&](uint16_t part, char* data, size_t size) {
            if (part == CTA_TUPLE_IP) {
              walk(data, size, [&](uint16_t kind, char* data, size_t size) {
                if ((kind == CTA_IP_V4_SRC || kind == CTA_IP_V6_SRC) && size <= 16) memcpy(osrc, data, size), found = true;
                if ((kind == CTA_IP_V4_DST || kind == CTA_IP_V6_DST) && size <= 16) memcpy(odst, data, size);
              });
            } else if (part == CTA_TUPLE_PROTO) {
              walk(data, size, [&](uint16_t kind, char* data, size_t size) {
                if (kind == CTA_PROTO_SRC_PORT && size == 2) memcpy(&osport, data, 2);
                if (kind == CTA_PROTO_DST_PORT && size == 2) memcpy(&odport, data, 2);
              });
            }
          });
        });
        if (!found) return env.Null();
        out.Set("family", Napi::Number::New(env, family == AF_INET6 ? 6 : 4));
        out.Set("src", Napi::Buffer<uint8_t>::Copy(env, osrc, 16));
        out.Set("sport", Napi::Number::New(env, ntohs(osport)));
        out.Set("dst", Napi::Buffer<uint8_t>::Copy(env, odst, 16));
        out.Set("dport", Napi::Number::New(env, ntohs(odport)));
        return out;
      }
    }
  }

  // clocks(): CLOCK_REALTIME, CLOCK_BOOTTIME and CLOCK_MONOTONIC read back to
  // back, as ns bigints: the capture's boot-time offset maps kernel times to
  // wall time, and /proc dates process starts on the boot-time clock.
  static Napi::Value Clocks(const Napi::CallbackInfo& info) {
    timespec mono1, real, boot, mono2;
    clock_gettime(CLOCK_MONOTONIC, &mono1);
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    clock_gettime(CLOCK_MONOTONIC, &mono2);
    auto ns = [](const timespec& t) -> uint64_t { return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + t.tv_nsec; };
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("realtime", Napi::BigInt::New(info.Env(), static_cast<uint64_t>(ns(real))));
    out.Set("boottime", Napi::BigInt::New(info.Env(), static_cast<uint64_t>(ns(boot))));
    out.Set("monotonic", Napi::BigInt::New(info.Env(), static_cast<uint64_t>((ns(mono1) + ns(mono2)) / 2)));
    return out;
  }
};

}  // namespace

Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return Agent::Init(env, exports); }

NODE_API_MODULE(loupe_bpf, InitAll)
