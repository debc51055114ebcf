// The CUvideodecoder's creation parameters for a sequence, written once for the service's
// `decoder: nvcuvid` (service/src/nvcuvid_decoder.cc) and bench/nvcuvid_ceiling, whose figures
// stand for it: NV12 (P016 for deeper streams), weave, the display area cropped into a target
// aligned to 2 (as FFmpeg's cuviddec), ulMax* = the coded size. Header only. ffnvcodec's
// dynlink_loader.h must be included before it: each user includes that with its own loader
// logging set up.
#ifndef CUFRAMES_COMMON_NVCUVID_CREATE_INFO_H_
#define CUFRAMES_COMMON_NVCUVID_CREATE_INFO_H_

namespace cfcommon {

inline CUVIDDECODECREATEINFO nvcuvid_create_info(const CUVIDEOFORMAT& f, int surfaces,
                                                 unsigned output_surfaces, CUvideoctxlock lock) {
  const unsigned width = static_cast<unsigned>(f.display_area.right - f.display_area.left);
  const unsigned height = static_cast<unsigned>(f.display_area.bottom - f.display_area.top);
  CUVIDDECODECREATEINFO ci{};
  ci.ulWidth = f.coded_width;
  ci.ulHeight = f.coded_height;
  ci.ulNumDecodeSurfaces = static_cast<tcu_ulong>(surfaces);
  ci.CodecType = f.codec;
  ci.ChromaFormat = f.chroma_format;
  ci.ulCreationFlags = cudaVideoCreate_PreferCUVID;
  ci.bitDepthMinus8 = f.bit_depth_luma_minus8;
  ci.ulMaxWidth = f.coded_width;
  ci.ulMaxHeight = f.coded_height;
  ci.display_area.left = static_cast<short>(f.display_area.left);
  ci.display_area.top = static_cast<short>(f.display_area.top);
  ci.display_area.right = static_cast<short>(f.display_area.right);
  ci.display_area.bottom = static_cast<short>(f.display_area.bottom);
  ci.OutputFormat =
      f.bit_depth_luma_minus8 > 0 ? cudaVideoSurfaceFormat_P016 : cudaVideoSurfaceFormat_NV12;
  ci.DeinterlaceMode = cudaVideoDeinterlaceMode_Weave;
  ci.ulTargetWidth = (width + 1) & ~1u;  // the target size "should be aligned to 2"
  ci.ulTargetHeight = (height + 1) & ~1u;
  ci.ulNumOutputSurfaces = output_surfaces;
  ci.vidLock = lock;
  return ci;
}

}  // namespace cfcommon

#endif  // CUFRAMES_COMMON_NVCUVID_CREATE_INFO_H_
