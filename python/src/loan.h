// The publisher's shared state (PubCore) and CuframesLoan, a slot lent for writing in place.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "common.h"
#include "dlpack.h"

namespace cfpy {

struct LoanState;

// The C publisher and everything that uses it. Calls on it are serialized by mu (the C ABI wants
// one thread at a time; Python threads may race once the GIL is released). The publisher is
// destroyed on close(), or later if DLPack tensors of its loans still point into the ring
// (pins): then it goes when the last of them is freed.
struct PubCore {
  std::mutex mu;
  cuframes_publisher_t* pub = nullptr;
  bool closing = false;
  int pins = 0;
  std::set<LoanState*> loans;

  ~PubCore() {
    if (pub != nullptr) cuframes_publisher_destroy(pub);
  }
  void destroy_locked() {
    if (pub != nullptr) {
      cuframes_publisher_destroy(pub);
      pub = nullptr;
    }
  }
};

// Held by every DLPack tensor exported from a loan: keeps the ring mapped.
struct ExportPin {
  explicit ExportPin(std::shared_ptr<PubCore> c) : core(std::move(c)) {
    std::lock_guard<std::mutex> lock(core->mu);
    ++core->pins;
  }
  ~ExportPin() {
    std::lock_guard<std::mutex> lock(core->mu);
    if (--core->pins == 0 && core->closing) core->destroy_locked();
  }
  std::shared_ptr<PubCore> core;
};

struct LoanState {
  LoanState(std::shared_ptr<PubCore> c, cuframes_loan_t* l) : core(std::move(c)), loan(l) {
    cuframes_loan_get_info(loan, &info);
    core->loans.insert(this);  // the caller holds core->mu
  }
  ~LoanState() {
    std::lock_guard<std::mutex> lock(core->mu);
    if (loan != nullptr && core->pub != nullptr) cuframes_publisher_abandon(core->pub, loan);
    core->loans.erase(this);
  }
  std::shared_ptr<PubCore> core;
  cuframes_loan_t* loan;  // null once committed or abandoned (guarded by core->mu)
  cuframes_frame_info_t info{};
  StreamSet streams;
};

// A slot lent for writing in place; published by commit() (or leaving the with block).
class Loan : public Exportable {
 public:
  Loan(std::shared_ptr<LoanState> state, std::string key, uintptr_t stream)
      : st_(std::move(state)), key_(std::move(key)), stream_(stream) {
    info_ = st_->info;
  }
  ~Loan() override = default;

  const cuframes_frame_info_t& frame_info() const override { return info_; }

  py::capsule export_plane(Plane plane, const py::object& stream, const py::object& max_version,
                           const py::object& dl_device, const py::object& copy) override {
    require_pending();
    ExportView view = plane_view(info_, plane);
    ExportRequest req = parse_export_args(view.device, stream, max_version, dl_device, copy);
    refuse_copy(req, "a loan (written in place)");
    if (req.has_stream) st_->streams.add(req.stream);
    return make_capsule(view, std::make_shared<ExportPin>(st_->core), req.versioned,
                        /*read_only=*/false);
  }

  uint64_t commit(std::optional<int64_t> pts_ns, const py::object& stream) {
    require_pending();
    const int64_t pts = pts_ns ? *pts_ns : pts_ ? *pts_ : cuframes_now_ns();
    uintptr_t s = stream_;
    if (!stream.is_none())
      s = parse_stream(stream, "stream");
    else if (s == 0)
      s = st_->streams.join(info_.device);
    std::shared_ptr<LoanState> st = std::move(st_);
    st_.reset();
    uint64_t seq = 0;
    cuframes_status_t rc;
    std::string msg;
    {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(st->core->mu);
      if (st->loan == nullptr || st->core->pub == nullptr) {
        rc = CUFRAMES_ERR_INVALID_ARGUMENT;
        msg = "the publisher of '" + key_ + "' was closed: the loan was abandoned";
      } else {
        rc = cuframes_publisher_commit(st->core->pub, st->loan, pts, reinterpret_cast<void*>(s),
                                       &seq);
        st->loan = nullptr;  // consumed, also on failure
        if (rc != CUFRAMES_OK) msg = cuframes_last_error();
      }
    }
    {
      py::gil_scoped_release nogil;
      st.reset();  // takes core->mu
    }
    if (rc != CUFRAMES_OK) {
      state_ = "failed";
      throw_status(rc, msg);
    }
    seq_ = seq;
    pts_ = pts;
    state_ = "committed";
    return seq;
  }

  void abandon() {
    if (!st_) return;
    std::shared_ptr<LoanState> st = std::move(st_);
    st_.reset();
    state_ = "abandoned";
    py::gil_scoped_release nogil;
    st.reset();  // ~LoanState abandons it
  }

  uint64_t seq() const { return seq_; }
  const char* state() const { return state_; }
  std::optional<int64_t> pts() const { return pts_; }
  void set_pts(std::optional<int64_t> v) { pts_ = v; }
  // The colour description commit publishes with the frame.
  void set_color(const py::object& matrix, const py::object& range) {
    require_pending();
    const auto m = static_cast<cuframes_color_matrix_t>(enum_value(matrix, "color_matrix"));
    const auto r = static_cast<cuframes_color_range_t>(enum_value(range, "color_range"));
    cuframes_status_t rc = CUFRAMES_ERR_INVALID_ARGUMENT;
    std::string msg = "the publisher of '" + key_ + "' was closed: the loan was abandoned";
    {
      py::gil_scoped_release nogil;  // the lock may be held by a publish() waiting for a slot
      std::lock_guard<std::mutex> lock(st_->core->mu);
      if (st_->loan != nullptr) {
        rc = cuframes_loan_set_color(st_->loan, m, r);
        if (rc != CUFRAMES_OK) msg = cuframes_last_error();
      }
    }
    if (rc != CUFRAMES_OK) throw_status(rc, msg);
    info_.color_matrix = m;
    info_.color_range = r;
  }

 private:
  void require_pending() const {
    if (!st_) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   std::string("the loan is ") + state_ + ": its slot is no longer lent to you");
    }
    bool dead;
    {
      py::gil_scoped_release nogil;  // a STRICT_WAIT publish may hold mu for a while
      std::lock_guard<std::mutex> lock(st_->core->mu);
      dead = st_->loan == nullptr;
    }
    if (dead) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   "the publisher of '" + key_ + "' was closed: the loan was abandoned");
    }
  }

  std::shared_ptr<LoanState> st_;
  std::string key_;
  uintptr_t stream_ = 0;
  cuframes_frame_info_t info_{};
  uint64_t seq_ = 0;
  const char* state_ = "pending";
  std::optional<int64_t> pts_;
};

// Lends a free slot of core's publisher (GIL released while it waits for one). stream: the
// stream given to loan(), 0 for none.
std::unique_ptr<Loan> lend(const std::shared_ptr<PubCore>& core, const std::string& key,
                           uintptr_t stream);
// CuframesLoan; before CuframesPublisher, whose loan() returns one.
void register_loan(py::module_& m);

}  // namespace cfpy
