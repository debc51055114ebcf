// FrameSource: the arrays handed to CuframesPublisher.publish, imported through DLPack and
// checked. Error messages are only composed when there is an error: publish() builds no strings.
#include "source.h"

#include <string>

namespace cfpy {
namespace {

cuframes_memory_t memory_of(const DLDevice& d) {
  switch (static_cast<int>(d.device_type)) {
    case kDLCPU:
    case kDLCUDAHost:
      return CUFRAMES_MEMORY_HOST;
    case kDLCUDA:
    case kDLCUDAManaged:
      return CUFRAMES_MEMORY_CUDA;
    default:
      break;
  }
  throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
               "frame sources must be in host or CUDA memory (DLPack device type " +
                   std::to_string(static_cast<int>(d.device_type)) + ")");
}

std::string shape_str(int64_t r, int64_t c) {
  return "(" + std::to_string(r) + ", " + std::to_string(c) + ")";
}

// Checks one source array and returns its address and row pitch in bytes. what() names it in
// error messages.
template <class What>
void source_plane(const DLTensor& t, int64_t rows, int64_t cols, uint32_t bytes_per_sample,
                  const What& what, const void** ptr, uint64_t* pitch) {
  const auto want = [&] {
    return shape_str(rows, cols) + (bytes_per_sample == 2 ? " uint16" : " uint8");
  };
  if (t.ndim != 2) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, what() + " must be a 2-D array " + want() +
                                                    ", got " + std::to_string(t.ndim) +
                                                    " dimensions");
  }
  if ((t.dtype.code != kDLUInt && t.dtype.code != kDLInt) || t.dtype.lanes != 1 ||
      t.dtype.bits != 8 * bytes_per_sample) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                 what() + " must be " + want() + ", got a " + std::to_string(t.dtype.bits) +
                     "-bit " + (t.dtype.code == kDLFloat ? "float" : "") + " array");
  }
  if (t.shape[0] != rows || t.shape[1] != cols) {
    throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, what() + " must be " + want() + ", got shape " +
                                                    shape_str(t.shape[0], t.shape[1]));
  }
  int64_t row_stride = cols;
  if (t.strides != nullptr) {
    if (cols > 1 && t.strides[1] != 1) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   what() + ": the samples of a row must be contiguous (strides[1] == 1), got " +
                       std::to_string(t.strides[1]));
    }
    if (rows > 1) {
      row_stride = t.strides[0];
      if (row_stride < cols) {
        throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                     what() + ": rows overlap or run backwards (strides[0] = " +
                         std::to_string(row_stride) + ")");
      }
    }
  }
  *ptr = static_cast<const uint8_t*>(t.data) + t.byte_offset;
  *pitch = static_cast<uint64_t>(row_stride) * bytes_per_sample;
}

}  // namespace

FrameSource::FrameSource(const py::object& source, const cuframes_geometry_t& g, uintptr_t stream) {
  const int64_t w = g.width;
  const int64_t h = g.height;
  const int64_t huv = g.height_uv;
  const uint32_t bps = g.bytes_per_sample;
  cuframes_source_init(&src_);
  src_.cuda_stream = reinterpret_cast<void*>(stream);
  size_t count = 1;
  if (PyTuple_Check(source.ptr()) || PyList_Check(source.ptr())) {
    py::sequence seq = py::reinterpret_borrow<py::sequence>(source);
    count = g.num_planes;
    if (py::len(seq) != count) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT,
                   std::string(cuframes_format_name(g.format)) + " takes " + std::to_string(count) +
                       " plane array(s), got " + std::to_string(py::len(seq)));
    }
    for (size_t i = 0; i < count; ++i) {
      tensors_[i].emplace(seq[i], stream);
      source_plane(
          tensors_[i]->tensor(), i == 0 ? h : huv, w, bps,
          [i] { return std::string(i == 0 ? "the Y plane" : "the UV plane"); }, &src_.planes[i],
          &src_.pitches[i]);
    }
  } else {
    tensors_[0].emplace(source, stream);
    source_plane(
        tensors_[0]->tensor(), h + huv, w, bps,
        [&] {
          return std::string("a ") + cuframes_format_name(g.format) + " " + std::to_string(w) +
                 "x" + std::to_string(h) + " frame";
        },
        &src_.planes[0], &src_.pitches[0]);
    if (g.num_planes == 2) {
      src_.planes[1] = static_cast<const uint8_t*>(src_.planes[0]) + src_.pitches[0] * h;
      src_.pitches[1] = src_.pitches[0];
    }
  }
  src_.memory = memory_of(tensors_[0]->tensor().device);
  for (size_t i = 1; i < count; ++i) {
    if (memory_of(tensors_[i]->tensor().device) != src_.memory) {
      throw_status(CUFRAMES_ERR_INVALID_ARGUMENT, "the planes are in different memories");
    }
  }
}

}  // namespace cfpy
