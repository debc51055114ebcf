// CuframesLoan: a slot of a publisher's ring lent for writing in place (CuframesPublisher.loan).
#include "loan.h"

#include <pybind11/stl.h>

#include <string>

#include "torch_interop.h"

namespace cfpy {
namespace {

template <class T>
void frame_like_properties(py::class_<T, Exportable>& c) {
  c.def_property_readonly(
       "cuda_ptr", [](const T& f) { return reinterpret_cast<uintptr_t>(f.frame_info().plane_y); },
       "Address of the Y plane (device pointer for cuda rings).")
      .def_property_readonly(
          "uv_ptr", [](const T& f) { return reinterpret_cast<uintptr_t>(f.frame_info().plane_uv); })
      .def_property_readonly(
          "format", [](const T& f) { return pixel_format(f.frame_info().geometry.format); })
      .def_property_readonly("width", [](const T& f) { return f.frame_info().geometry.width; })
      .def_property_readonly("height", [](const T& f) { return f.frame_info().geometry.height; })
      .def_property_readonly("pitch_y", [](const T& f) { return f.frame_info().geometry.pitch_y; })
      .def_property_readonly("pitch_uv",
                             [](const T& f) { return f.frame_info().geometry.pitch_uv; })
      .def_property_readonly("bytes_per_sample",
                             [](const T& f) { return f.frame_info().geometry.bytes_per_sample; })
      .def_property_readonly("memory",
                             [](const T& f) { return memory_name(f.frame_info().memory); })
      .def_property_readonly("device", [](const T& f) { return f.frame_info().device; })
      .def_property_readonly("slot", [](const T& f) { return f.frame_info().slot; })
      .def(
          "dlpack_y",
          [](T& f, const py::object& stream, const py::object& max_version) {
            return f.export_plane(Plane::kY, stream, max_version, py::none(), py::none());
          },
          py::arg("stream") = py::none(), py::arg("max_version") = py::none())
      .def(
          "dlpack_uv",
          [](T& f, const py::object& stream, const py::object& max_version) {
            return f.export_plane(Plane::kUV, stream, max_version, py::none(), py::none());
          },
          py::arg("stream") = py::none(), py::arg("max_version") = py::none())
      .def(
          "__dlpack__",
          [](T& f, const py::object& stream, const py::object& max_version,
             const py::object& dl_device, const py::object& copy) {
            return f.export_plane(Plane::kY, stream, max_version, dl_device, copy);
          },
          py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
          py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__dlpack_device__", &Exportable::dlpack_device)
      .def_property_readonly("y", [](py::object self) { return make_plane(self, Plane::kY); })
      .def_property_readonly("uv",
                             [](py::object self) {
                               plane_view(self.cast<T&>().frame_info(), Plane::kUV);
                               return make_plane(self, Plane::kUV);
                             })
      .def_property_readonly("yuv", [](py::object self) { return make_plane(self, Plane::kYUV); });
}

}  // namespace

std::unique_ptr<Loan> lend(const std::shared_ptr<PubCore>& core, const std::string& key,
                           uintptr_t stream) {
  std::shared_ptr<LoanState> state;
  cuframes_status_t st;
  std::string msg;
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(core->mu);
    cuframes_loan_t* l = nullptr;
    if (core->pub == nullptr) {
      st = CUFRAMES_ERR_INVALID_ARGUMENT;
      msg = "publisher of '" + key + "' is closed";
    } else {
      st = cuframes_publisher_loan(core->pub, &l);
      if (st != CUFRAMES_OK)
        msg = cuframes_last_error();
      else
        state = std::make_shared<LoanState>(core, l);
    }
  }
  if (st != CUFRAMES_OK) throw_status(st, msg);
  return std::make_unique<Loan>(std::move(state), key, stream);
}

void register_loan(py::module_& m) {
  py::class_<Loan, Exportable> loan(
      m, "CuframesLoan",
      "A slot lent for writing (CuframesPublisher.loan()). Its DLPack exports are writable. "
      "Published by commit() or on leaving the with block; abandoned by abandon(), an exception "
      "in the block, or garbage collection. Do not write through its tensors after that.");
  add_torch_method<Loan>(loan);
  loan.def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](Loan& l, const py::object& exc_type, const py::object&, const py::object&) {
             if (std::string(l.state()) != "pending") return false;
             if (exc_type.is_none())
               l.commit(std::nullopt, py::none());
             else
               l.abandon();
             return false;
           })
      .def("commit", &Loan::commit, py::arg("pts_ns") = py::none(), py::arg("stream") = py::none(),
           "Publishes the slot; returns its seq. pts_ns: this, else the pts_ns attribute, else "
           "now. Cuda rings: it is published once the work queued on stream (default: the "
           "streams the loan was exported to with DLPack, else the stream given to loan(), else "
           "the default stream) has completed.")
      .def("abandon", &Loan::abandon, "Gives the slot back unpublished (idempotent).")
      .def_property("pts_ns", &Loan::pts, &Loan::set_pts,
                    "The pts the frame is published with (None: CLOCK_MONOTONIC at commit).")
      .def_property(
          "color_matrix", [](const Loan& l) { return color_matrix(l.frame_info().color_matrix); },
          [](Loan& l, const py::object& v) {
            l.set_color(v, color_range(l.frame_info().color_range));
          },
          "The ColorMatrix the frame is published with (default UNKNOWN).")
      .def_property(
          "color_range", [](const Loan& l) { return color_range(l.frame_info().color_range); },
          [](Loan& l, const py::object& v) {
            l.set_color(color_matrix(l.frame_info().color_matrix), v);
          },
          "The ColorRange the frame is published with (default UNKNOWN).")
      .def_property_readonly("seq", &Loan::seq, "The published seq; 0 until committed.")
      .def_property_readonly("state", &Loan::state,
                             "\"pending\", \"committed\", \"abandoned\" or \"failed\".")
      .def_property_readonly("committed",
                             [](const Loan& l) { return std::string(l.state()) == "committed"; })
      .def("__repr__", [](const Loan& l) {
        const cuframes_frame_info_t& i = l.frame_info();
        return "<CuframesLoan slot=" + std::to_string(i.slot) + " " +
               cuframes_format_name(i.geometry.format) + " " + std::to_string(i.geometry.width) +
               "x" + std::to_string(i.geometry.height) + " " + l.state() + ">";
      });
  frame_like_properties(loan);
}

}  // namespace cfpy
