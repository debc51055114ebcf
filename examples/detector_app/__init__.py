"""An example detector: a long-running consumer of every cuframes-service camera.

For each camera it finds in the runtime directory (the rings `cam-<name>`), a thread subscribes,
reads every newest frame in place (zero-copy, through DLPack) and measures three things on the
luma (Y) plane:

  luma    the mean brightness, 0..255
  edges   the mean absolute 3x3 Laplacian (a convolution): how sharp or busy the picture is
  motion  the mean absolute difference of the 4x4-averaged picture against the previous frame
          this detector processed (0 for the first frame after a (re)connect)

Frames in GPU memory (`memory: cuda` rings) are processed with PyTorch on the GPU, on one CUDA
stream per camera; the frame's hold is released on that stream, so the slot is reused only once
the queued work has finished. Frames in host memory (`memory: host` rings) are processed with
NumPy on the CPU, also without a copy. PyTorch is optional: without it (or without CUDA) host
rings still work, which is how CI runs this example.

Each camera's subscriber survives the service going away and coming back (a restart, a reload
that changed the camera, a camera added later): it reconnects with a backoff. Results go to MQTT
when --mqtt is given (paho-mqtt), with Home Assistant discovery for a sensor per camera and
value. At exit (--seconds, SIGTERM or Ctrl-C) it prints one summary line per camera:

  summary camera=NAME key=cam-NAME frames=N fps=F seq=S luma=L edges=E motion=M memory=MEM
          backend=numpy|torch device=DEV connects=C gaps=G errors=X
(luma, edges and motion are "-" until a frame has given them)

With --detect (or --weights) it also runs an object detector: torchvision's SSDlite320
MobileNetV3-Large (see "detection" below for how it is fed). The newest frame of every camera
goes into one batch per device (the cuda rings' frames on the GPU in float16, on one CUDA
stream; host rings' frames on the CPU in float32), made by cuframes.preprocess in one pass;
the boxes come back in each frame's pixels through batch.to_frame. Per camera it reports the
objects scoring at least --score-threshold in its latest batched frame (MQTT: `objects`, and
`labels` by COCO class), per device the throughput, the model's time per batch and the latency
from a frame's publication to its detections (MQTT `<base>/detection/<cuda|cpu>`, Home
Assistant sensors). The summary lines gain detected=N skipped=N detected_seq=S objects=N
width=W height=H box=x1,y1,x2,y2 tbox=x1,y1,x2,y2 (the best detection in frame and in tensor
pixels), and a line `summary-detection device=D batches=N frames=N errors=N` per device.
--weights default takes torchvision's pretrained COCO weights (downloaded once), --weights FILE
a state dict; without --weights the weights are random (nothing is detected: for throughput).

Usage:
  detector.py [--runtime-dir DIR] [--cameras a,b] [--mqtt HOST[:PORT]] [--seconds N]
              [--detect] [--weights default|FILE] [--score-threshold 0.5]

The MQTT user and password come from --mqtt-username and the environment (CUFRAMES_MQTT_USERNAME,
CUFRAMES_MQTT_PASSWORD) or --mqtt-password-file; a password is never taken on the command line.
"""
