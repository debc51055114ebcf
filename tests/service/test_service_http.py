"""The HTTP endpoint (docs/http.md) with real clients: /metrics parsed by prometheus_client's
parser and matched against the status file, /api/status, snapshots that decode to the camera's
picture, the page in headless Chromium (its screenshot kept under the test artefacts), and bad
requests (unknown paths and cameras, a bad width, a huge header, a slow client, a POST) that get
clear errors while the cameras stream on; a port already taken stops the start with a message
naming the address."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from prometheus_client.parser import text_string_to_metric_families

import cuframes

import media
from snapshot_check import check_snapshot, decode_jpeg
import svc

REPO = Path(__file__).resolve().parents[2]
# Screenshots and pages of the Chromium test: CUFRAMES_TEST_ARTIFACTS, else build/test-artifacts.
ARTIFACTS = Path(os.environ.get("CUFRAMES_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))


class Http:
    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, timeout: float = 10.0,
            headers: Optional[dict[str, str]] = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def wait_up(self, s: svc.Service, timeout: float = 15.0) -> None:
        def up() -> bool:
            try:
                return self.get("/api/status", timeout=2)[0] == 200
            except OSError:
                return False
        svc.wait_for(up, timeout, f"HTTP on {self.base}", s.describe)


def _start(service: Callable[..., svc.Service], clip: Callable[[str], tuple[media.Clip, Path]],
           workdir: Path) -> tuple[svc.Service, Http, media.Clip]:
    c, path = clip("h264-1280x720")
    port = svc.free_port()
    s = service({"front": {"url": str(path), "loop": True, "realtime": True,
                           "decoder": "software"},
                 "yard": {"url": "testsrc://?width=320&height=240&fps=30"},
                 "gone": {"url": str(workdir / "missing.mp4")}},
                http={"listen": f"127.0.0.1:{port}"})
    h = Http(port)
    h.wait_up(s)
    s.wait_state("front", "streaming", 20)
    s.wait_state("yard", "streaming", 20)
    s.wait_state("gone", "error", 20)
    return s, h, c


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(fams: dict[str, Any], name: str, **labels: str) -> float:
    for f in fams.values():
        for smp in f.samples:
            if smp.name == name and all(smp.labels.get(k) == v for k, v in labels.items()):
                return float(smp.value)
    raise AssertionError(f"no sample {name}{labels}")


COUNTERS = ["cuframes_camera_frames", "cuframes_camera_dropped_frames",
            "cuframes_camera_decode_errors", "cuframes_camera_reconnects",
            "cuframes_camera_snapshots", "cuframes_camera_snapshot_failures",
            "cuframes_camera_snapshot_cpu_seconds", "cuframes_camera_snapshot_gpu_seconds",
            "cuframes_subscriber_frames", "cuframes_subscriber_gaps",
            "cuframes_subscriber_timeouts", "cuframes_subscriber_errors",
            "cuframes_subscriber_overruns"]
GAUGES = ["cuframes_info", "cuframes_uptime_seconds", "cuframes_cameras",
          "cuframes_cameras_streaming", "cuframes_camera_up", "cuframes_camera_fps",
          "cuframes_camera_subscribers", "cuframes_camera_ring_occupancy",
          "cuframes_camera_ring_slots", "cuframes_camera_last_frame_age_seconds",
          "cuframes_camera_state", "cuframes_subscriber_latency_seconds",
          "cuframes_subscriber_lag_frames", "cuframes_subscriber_held_frames"]


def test_metrics_status_and_snapshots(service: Callable[..., svc.Service],
                                      clip: Callable[[str], tuple[media.Clip, Path]],
                                      workdir: Path, runtime_dir: str) -> None:
    s, h, c = _start(service, clip, workdir)
    with cuframes.subscribe("cam-yard", consumer_name="det", connect_timeout_ms=5000,
                            runtime_dir=runtime_dir) as sub:
        for _ in range(10):
            with sub.next_frame(timeout_ms=3000):
                pass
        s.wait_camera("yard", lambda cam: cam["subscribers"] == 1, 5, "the subscriber counted")
        before = s.status()
        code, hdr, body = h.get("/metrics")
        assert code == 200, (code, body)
        assert hdr["Content-Type"].startswith("text/plain; version=0.0.4"), hdr
        text = body.decode()
        fams = _families(text)
        # Every family with its type; counters are counters (and their samples end in _total).
        for name in COUNTERS:
            assert name in fams and fams[name].type == "counter", (name, fams.get(name))
            assert all(x.name == name + "_total" for x in fams[name].samples), fams[name]
        for name in GAUGES:
            assert name in fams and fams[name].type == "gauge", (name, fams.get(name))
        for line in text.splitlines():
            if line.startswith("# TYPE"):
                assert re.fullmatch(r"# TYPE \w+ (counter|gauge)", line), line
        # The figures of the status file: the same, or between the one written before the
        # scrape and the first written after it (by uptime) for what moves.
        up = _value(fams, "cuframes_uptime_seconds")
        after = svc.wait_for(lambda: (lambda st: st if st and st["uptime_s"] >= up + 0.1
                                      else None)(s.status()), 5, "a status file after the scrape")
        assert before is not None
        assert _value(fams, "cuframes_cameras") == 3
        for name in ("front", "yard", "gone"):
            b, a = before["cameras"][name], after["cameras"][name]
            frames = _value(fams, "cuframes_camera_frames_total", camera=name)
            assert b["frames"] <= frames <= a["frames"], (name, b["frames"], frames, a["frames"])
            for key, metric in (("slots", "cuframes_camera_ring_slots"),
                                ("subscribers", "cuframes_camera_subscribers"),
                                ("reconnects", "cuframes_camera_reconnects_total"),
                                ("decode_errors", "cuframes_camera_decode_errors_total"),
                                ("dropped", "cuframes_camera_dropped_frames_total")):
                if b[key] == a[key]:
                    assert _value(fams, metric, camera=name) == a[key], (name, key, a[key])
            assert _value(fams, "cuframes_camera_up", camera=name) == (a["state"] == "streaming")
            assert _value(fams, "cuframes_camera_state", camera=name, state=a["state"]) == 1
        assert _value(fams, "cuframes_cameras_streaming") == 2
        assert _value(fams, "cuframes_camera_subscribers", camera="yard") == 1
        assert _value(fams, "cuframes_subscriber_frames_total", camera="yard",
                      subscriber="det") >= 10
        # The service's own snapshot reader is not a subscriber.
        assert not [x for x in fams["cuframes_subscriber_frames"].samples
                    if "snapshot" in x.labels["subscriber"]], fams["cuframes_subscriber_frames"]

    # /api/status is the status file's JSON.
    code, hdr, body = h.get("/api/status")
    assert code == 200 and hdr["Content-Type"] == "application/json", (code, hdr)
    api = json.loads(body)
    st = s.status()
    assert st is not None and api["pid"] == st["pid"] == s.pid
    assert set(api["cameras"]) == set(st["cameras"]) == {"front", "yard", "gone"}
    assert set(api["cameras"]["front"]) == set(st["cameras"]["front"])

    # Snapshots: the clip's picture, scaled to ?width= or at full size; counted in /metrics.
    code, hdr, body = h.get("/api/cameras/front/snapshot.jpg?width=320")
    assert code == 200 and hdr["Content-Type"] == "image/jpeg", (code, hdr, body[:200])
    n = check_snapshot(body, c.width, c.height, 320, c.frames)
    code, _, body = h.get("/api/cameras/front/snapshot.jpg")
    assert code == 200, (code, body[:200])
    check_snapshot(body, c.width, c.height, 0, c.frames)
    code, _, body = h.get("/api/cameras/yard/snapshot.jpg?width=1000")
    assert code == 200 and decode_jpeg(body).shape == (240, 320, 3)  # never scaled up
    fams = _families(h.get("/metrics")[2].decode())
    assert _value(fams, "cuframes_camera_snapshots_total", camera="front") >= 2
    assert _value(fams, "cuframes_camera_snapshot_cpu_seconds_total", camera="front") > 0
    print(f"snapshot of front: frame {n}")
    s.assert_running()


def test_bad_requests(service: Callable[..., svc.Service],
                      clip: Callable[[str], tuple[media.Clip, Path]], workdir: Path) -> None:
    s, h, _ = _start(service, clip, workdir)
    frames0 = s.status()["cameras"]["yard"]["frames"]  # type: ignore[index]
    code, _, body = h.get("/api/cameras/nosuch/snapshot.jpg")
    assert code == 404 and b"no camera 'nosuch'" in body and b"front" in body, (code, body)
    code, hdr, body = h.get("/api/cameras/gone/snapshot.jpg")
    assert code == 503 and b"gone" in body and b"error" in body, (code, body)
    assert hdr.get("Retry-After") == "1", hdr
    for bad in ("0", "abc", "99999", "-5", ""):
        code, _, body = h.get(f"/api/cameras/front/snapshot.jpg?width={bad}")
        assert code == 400 and b"width" in body, (bad, code, body)
    code, _, body = h.get("/no/such/path")
    assert code == 404 and b"/no/such/path" in body and b"/metrics" in body, (code, body)
    # A POST: 405, only GET.
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    conn.request("POST", "/metrics", body=b"x")
    r = conn.getresponse()
    assert r.status == 405 and b"only GET" in r.read(), r.status
    conn.close()
    # A huge header (64 KiB): refused with a 4xx, or the connection closed; nothing else.
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"X-Huge": "a" * 65536})
        status = conn.getresponse().status
        assert 400 <= status < 500, status
    except (ConnectionError, http.client.RemoteDisconnected):
        pass
    finally:
        conn.close()
    # A huge URI: 414.
    code, _, _ = h.get("/" + "a" * 20000)
    assert code == 414, code
    # A slow client (half a request line, then nothing) is dropped after the read timeout, and
    # others are served meanwhile.
    slow = socket.create_connection(("127.0.0.1", h.port), timeout=20)
    try:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        assert h.get("/api/status")[0] == 200
        data = slow.recv(65536)  # the server closes it (b""), maybe after a 4xx
        assert data == b"" or data.startswith(b"HTTP/1.1 4"), data[:200]
        waited = time.monotonic() - t0
        assert waited < 15, waited
    finally:
        slow.close()
    # The cameras never noticed.
    s.wait_camera("yard", lambda cam: cam["state"] == "streaming" and cam["frames"] > frames0 + 30,
                  10, "yard streaming on")
    s.assert_running()


def test_page_in_chromium(service: Callable[..., svc.Service],
                          clip: Callable[[str], tuple[media.Clip, Path]], workdir: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("no chromium: run scripts/install-deps.sh (Debian's chromium)")
    s, h, _ = _start(service, clip, workdir)
    code, hdr, page = h.get("/")
    assert code == 200 and hdr["Content-Type"].startswith("text/html"), (code, hdr)
    assert not re.search(rb"(src|href)=\"(https?:)?//", page), "the page loads something external"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "http-page.png"
    shot.unlink(missing_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--hide-scrollbars", f"--user-data-dir={workdir / 'chromium'}"]
    r = subprocess.run([chromium, *flags, "--window-size=1500,1100", f"--screenshot={shot}",
                        h.base + "/"], capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10000, (r.returncode, r.stderr[-2000:])
    dom = subprocess.run([chromium, *flags, "--dump-dom", h.base + "/"], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    (ARTIFACTS / "http-page.html").write_text(dom.stdout)
    sections = re.findall(r'<section class="cam" data-camera="([^"]+)">(.*?)</section>',
                          dom.stdout, re.S)
    assert [n for n, _ in sections] == ["front", "yard", "gone"], dom.stdout[:3000]
    body = dict(sections)
    # The streaming cameras' pictures loaded (their natural width), the errored one's did not.
    assert re.search(r'data-loaded="480"', body["front"]), body["front"]
    assert re.search(r'data-loaded="320"', body["yard"]), body["yard"]
    assert "data-loaded" not in body["gone"] and 'class="state error"' in body["gone"]
    assert 'class="state streaming"' in body["front"]
    # The screenshot shows pictures: not a blank page.
    from PIL import Image
    with Image.open(shot) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 1000, f"{len(colours)} colours: a blank page?"
    print(f"screenshot: {shot}")
    s.assert_running()


def test_bind_failure_names_the_address(workdir: Path, runtime_dir: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg = svc.write_config(workdir / "c.yaml", {"yard": {"url": "testsrc://"}}, runtime_dir,
                               http={"listen": f"127.0.0.1:{port}"})
        r = svc.run_service(["--config", str(cfg)], timeout=20)
    out = r.stdout + r.stderr
    assert r.returncode == 1, (r.returncode, out[-2000:])
    assert f"cannot listen on 127.0.0.1:{port}" in out, out[-2000:]


@pytest.mark.parametrize("listen,why", [("9900", "HOST:PORT"), ("127.0.0.1:0", "HOST:PORT"),
                                        ("::1:9900", "HOST:PORT"), ("host:70000", "HOST:PORT")])
def test_bad_listen_config(workdir: Path, runtime_dir: str, listen: str, why: str) -> None:
    cfg = svc.write_config(workdir / "c.yaml", {"yard": {"url": "testsrc://"}}, runtime_dir,
                           http={"listen": listen})
    r = svc.run_service(["--config", str(cfg), "--check-config"])
    assert r.returncode == 2 and "http.listen" in r.stderr and why in r.stderr, r.stderr
