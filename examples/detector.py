#!/usr/bin/env python3
"""An example detector: a long-running consumer of every cuframes-service camera.

    python3 examples/detector.py [--runtime-dir DIR] [--cameras a,b] [--mqtt HOST[:PORT]]
                                 [--detect] ...      (--help: every option)

What it does and reports is said in detector_app/__init__.py; the code is the package
detector_app/ next to this file, a module per part:

  cli.py          the options, the main loop (cameras found or named, periodic log and MQTT
                  results), the summary lines at exit
  camera.py       a thread per camera: subscribes, reads every newest frame, reconnects
  measure.py      luma, edges and motion on the Y plane (NumPy for host frames, PyTorch on CUDA)
  detection.py    --detect: a batch of every camera's newest frame per device, the model on it
  feeds.py        what goes into a batch: the frame in its ring, or Frigate's host picture
  model.py        torchvision's SSDlite320 and how it is fed and run (read this one first)
  postprocess.py  its post-processing for the whole batch at once
  graphs.py       its backbone and heads replayed as CUDA graphs
  mqtt.py         results to MQTT, Home Assistant discovery
  base.py         the logger, ring names, optional PyTorch, the setup error
"""

import os
import sys

# The package sits next to this file: found when run as a script (its folder is sys.path[0])
# and also when the file is loaded by path or run with -P/-I.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from detector_app.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
