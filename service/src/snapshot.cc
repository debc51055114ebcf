#include "snapshot.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "camera.h"
#include "logging.h"
#include "source.h"  // mono_ns

namespace cfsvc {
namespace {

using Clock = std::chrono::steady_clock;

// Periodic pictures wait this long at most for a frame newer than the last one read (a picture
// asked for over HTTP may have taken the newest one just before).
constexpr Duration kPeriodicWaitMax{250};
// A caller of take() waits this much longer than the frame wait for the worker (busy with
// other cameras' pictures) before giving up.
constexpr Duration kTakeSlack{5000};

struct Reader {
  std::string key;
  std::unique_ptr<cuframes::Subscriber> sub;
  std::unique_ptr<LogThrottle> log = std::make_unique<LogThrottle>();
};

struct Request {
  std::string camera;
  uint32_t max_width = 0;
  Duration wait{0};
  bool done = false;
  SnapshotWorker::Result result;
};

}  // namespace

struct SnapshotWorker::Impl {
  explicit Impl(SnapshotFn s) : snapshot(std::move(s)) {}

  void run();
  void periodic();
  Result serve(const std::string& camera, uint32_t max_width, Duration wait,
               const ServiceSnapshot& snap);
  Reader* reader(const CameraStatus& c, const std::string& dir, std::string* error);
  void prune(const ServiceSnapshot& snap);

  const SnapshotFn snapshot;

  mutable std::mutex mu;  // everything below up to the worker's own
  std::condition_variable cv, done_cv;
  bool stop = false;
  bool reconfigured = false;  // set_periodic ran: the wait starts over with its deadline
  std::deque<std::shared_ptr<Request>> requests;
  Duration interval{0};
  uint32_t width = 0;
  Sink sink;  // written with mu and sink_mu held; called with sink_mu held
  std::mutex sink_mu;
  Clock::time_point next_periodic = Clock::now();
  std::map<std::string, SnapshotCounters> counters;

  // The worker thread's own.
  std::map<std::string, Reader> readers;  // by camera name
  FrameEncoder encoder;
  std::thread thread;
};

SnapshotWorker::SnapshotWorker(SnapshotFn snapshot)
    : impl_(std::make_unique<Impl>(std::move(snapshot))) {
  impl_->thread = std::thread([this] { impl_->run(); });
}

SnapshotWorker::~SnapshotWorker() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

void SnapshotWorker::set_periodic(Duration interval, uint32_t max_width, Sink sink) {
  std::lock_guard<std::mutex> sl(impl_->sink_mu);  // waits for a call in flight
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->interval = sink ? interval : Duration{0};
    impl_->width = max_width;
    impl_->sink = std::move(sink);
    impl_->next_periodic = Clock::now() + std::chrono::milliseconds(200);  // the cameras start
    impl_->reconfigured = true;
  }
  impl_->cv.notify_all();
}

SnapshotWorker::Result SnapshotWorker::take(const std::string& camera, uint32_t max_width,
                                            Duration wait) {
  auto req = std::make_shared<Request>();
  req->camera = camera;
  req->max_width = max_width;
  req->wait = wait;
  std::unique_lock<std::mutex> lk(impl_->mu);
  impl_->requests.push_back(req);
  impl_->cv.notify_all();
  if (!impl_->done_cv.wait_for(lk, wait + kTakeSlack, [&] { return req->done; })) {
    Result r;
    r.outcome = Outcome::kError;
    r.message = "the snapshot worker is busy: try again";
    return r;
  }
  return std::move(req->result);
}

std::map<std::string, SnapshotCounters> SnapshotWorker::counters() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->counters;
}

void SnapshotWorker::Impl::run() {
  for (;;) {
    std::shared_ptr<Request> req;
    {
      std::unique_lock<std::mutex> lk(mu);
      auto ready = [&] {
        return stop || reconfigured || !requests.empty() ||
               (interval.count() > 0 && Clock::now() >= next_periodic);
      };
      if (interval.count() > 0) {
        cv.wait_until(lk, next_periodic, ready);
      } else {
        cv.wait(lk, ready);
      }
      if (stop) break;
      reconfigured = false;
      if (!requests.empty()) {
        req = std::move(requests.front());
        requests.pop_front();
      } else if (interval.count() > 0 && Clock::now() >= next_periodic) {
        next_periodic = Clock::now() + interval;
      } else {
        continue;  // woken by set_periodic: wait again with the new interval
      }
    }
    if (req) {
      Result r;
      try {
        const ServiceSnapshot snap = snapshot();
        prune(snap);
        r = serve(req->camera, req->max_width, req->wait, snap);
      } catch (const std::exception& e) {
        r.outcome = Outcome::kError;
        r.message = e.what();
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        req->result = std::move(r);
        req->done = true;
      }
      done_cv.notify_all();
    } else {
      try {
        periodic();
      } catch (const std::exception& e) {
        spdlog::warn("snapshots: {}", e.what());
      }
    }
  }
  readers.clear();  // detach before the encoder's streams go
}

// Readers of cameras gone (or whose ring key changed) detach.
void SnapshotWorker::Impl::prune(const ServiceSnapshot& snap) {
  for (auto it = readers.begin(); it != readers.end();) {
    const bool present = std::any_of(snap.cameras.begin(), snap.cameras.end(), [&](auto& c) {
      return c.name == it->first && c.key == it->second.key;
    });
    it = present ? std::next(it) : readers.erase(it);
  }
}

void SnapshotWorker::Impl::periodic() {
  uint32_t max_width;
  Duration every;
  {
    std::lock_guard<std::mutex> lk(mu);
    max_width = width;
    every = interval;
  }
  const Duration wait = std::min(kPeriodicWaitMax, every / 4);
  const ServiceSnapshot snap = snapshot();
  prune(snap);
  for (const CameraStatus& c : snap.cameras) {
    if (c.state != "streaming") continue;  // stalled, errored, ...: no new picture
    Result r = serve(c.name, max_width, wait, snap);
    if (r.outcome != Outcome::kOk) {
      spdlog::debug("snapshot of camera '{}': none this time: {}", c.name, r.message);
      continue;
    }
    spdlog::trace("snapshot of camera '{}': {}x{}, {} bytes, CPU {:.2f} ms, GPU {:.3f} ms", c.name,
                  r.picture.width, r.picture.height, r.picture.jpeg.size(),
                  r.picture.cost.cpu_s * 1e3, r.picture.cost.gpu_s * 1e3);
    std::lock_guard<std::mutex> sl(sink_mu);
    if (sink) sink(c.name, r.picture);
  }
}

Reader* SnapshotWorker::Impl::reader(const CameraStatus& c, const std::string& dir,
                                     std::string* error) {
  auto it = readers.find(c.name);
  if (it != readers.end() && it->second.sub) return &it->second;
  Reader& r = readers[c.name];
  r.key = c.key;
  try {
    // The ring's memory and device, to import a cuda ring on its GPU with our stream.
    cuframes::Observer obs(c.key, 0, dir.c_str());
    const cuframes_ring_status_t ring = obs.read().ring;
    cuframes::Subscriber::Options o;
    o.runtime_dir = dir.c_str();
    o.consumer_name = kSnapshotConsumer;
    o.mode = CUFRAMES_MODE_NEWEST_ONLY;
    o.connect_timeout_ms = 0;
    if (ring.memory == CUFRAMES_MEMORY_CUDA) {
      o.cuda_device = ring.device;
      o.consumer_stream = encoder.stream(ring.device);
    }
    r.sub = std::make_unique<cuframes::Subscriber>(c.key, o);
  } catch (const std::exception& e) {
    *error = e.what();
    return nullptr;
  }
  return &r;
}

SnapshotWorker::Result SnapshotWorker::Impl::serve(const std::string& camera, uint32_t max_width,
                                                   Duration wait, const ServiceSnapshot& snap) {
  Result res;
  const CameraStatus* c = nullptr;
  for (const CameraStatus& x : snap.cameras) {
    if (x.name == camera) c = &x;
  }
  if (c == nullptr) {
    res.outcome = Outcome::kUnknownCamera;
    res.message = "no camera '" + camera + "'";
    return res;
  }
  res.outcome = Outcome::kNoFrame;
  if (c->state != "streaming") {
    res.message = "camera '" + camera + "' is " + c->state + ": it has no fresh frame";
    return res;
  }
  std::string why;
  Reader* r = reader(*c, snap.runtime_dir, &why);
  if (r == nullptr) {
    res.message = "camera '" + camera + "' has no ring to read yet: " + why;
    return res;
  }
  const int64_t now = mono_ns();
  try {
    cuframes::Frame f;
    const cuframes_status_t st = r->sub->try_next(static_cast<int>(wait.count()), &f);
    if (st == CUFRAMES_ERR_FRAME_TIMEOUT) {
      res.message = "camera '" + camera + "' published no new frame within " +
                    std::to_string(wait.count()) + " ms";
      return res;
    }
    if (st != CUFRAMES_OK) {
      r->sub.reset();  // PUBLISHER_GONE (a new ring) or worse: subscribe again next time
      res.message = "camera '" + camera + "': reading its ring failed (" +
                    cuframes_status_name(st) + "); it is read again from its next ring";
      return res;
    }
    res.picture = encoder.encode(std::move(f), max_width);
  } catch (const std::exception& e) {
    std::string repeated;
    if (r->log->allow(now, &repeated)) {
      spdlog::warn("camera '{}': snapshot failed: {}{}", camera, e.what(), repeated);
    }
    std::lock_guard<std::mutex> lk(mu);
    counters[camera].failures++;
    res.outcome = Outcome::kError;
    res.message = "camera '" + camera + "': snapshot failed: " + e.what();
    return res;
  }
  res.outcome = Outcome::kOk;
  std::lock_guard<std::mutex> lk(mu);
  SnapshotCounters& k = counters[camera];
  k.pictures++;
  k.cpu_s += res.picture.cost.cpu_s;
  k.gpu_s += res.picture.cost.gpu_s;
  return res;
}

}  // namespace cfsvc
