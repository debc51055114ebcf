// A camera's state (camera.h says when each is entered): the one list the camera, the status
// file and MQTT (Home Assistant's enum sensor options) take the states and their names from.
#ifndef CUFRAMES_SERVICE_CAMERA_STATE_H_
#define CUFRAMES_SERVICE_CAMERA_STATE_H_

namespace cfsvc {

enum class CameraState { kConnecting, kStreaming, kStalled, kError, kStopped };

// Every state, in the order reports list them.
inline constexpr CameraState kCameraStates[] = {CameraState::kConnecting, CameraState::kStreaming,
                                                CameraState::kStalled, CameraState::kError,
                                                CameraState::kStopped};

// "connecting", "streaming", "stalled", "error", "stopped".
constexpr const char* to_string(CameraState s) {
  switch (s) {
    case CameraState::kConnecting:
      return "connecting";
    case CameraState::kStreaming:
      return "streaming";
    case CameraState::kStalled:
      return "stalled";
    case CameraState::kError:
      return "error";
    case CameraState::kStopped:
      return "stopped";
  }
  return "?";
}

}  // namespace cfsvc

#endif  // CUFRAMES_SERVICE_CAMERA_STATE_H_
