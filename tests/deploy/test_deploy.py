"""The docker-compose deployment (deploy/), checked without Docker: the compose file as
docker-compose 1.29 parses it (no daemon needed), the Dockerfile's stages and instructions, the
shipped service and broker configs run by the real programs, the runtime-deps script on the real
binaries, and the container's healthcheck against a real cuframes-service and the real
`cuframes` CLI: healthy, a camera down, a hung service, a ring that does not answer, a crash, a
clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

import deploy_helpers as dh
import mqtt_helpers as mh
import svc

SERVICE = "cuframes-service"
DETECTOR = "detector"
RUNTIME = "/run/cuframes"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dh.compose_config()


def _volumes(s: dict[str, Any]) -> list[dict[str, Any]]:
    """A service's mounts as {type, source, target, read_only} (short syntax normalised)."""
    out = []
    for v in s.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            out.append({"type": "bind" if parts[0].startswith(("/", ".")) else "volume",
                        "source": parts[0], "target": parts[1],
                        "read_only": len(parts) > 2 and "ro" in parts[2].split(",")})
        else:
            out.append(dict(v, read_only=bool(v.get("read_only"))))
    return out


def _devices(s: dict[str, Any]) -> list[dict[str, Any]]:
    return (s.get("deploy", {}).get("resources", {}).get("reservations", {})
            .get("devices", []))


def _command(s: dict[str, Any]) -> list[str]:
    c = s.get("command", [])
    return c.split() if isinstance(c, str) else [str(x) for x in c]


def _tmpfs_opts(compose: dict[str, Any], volume: str) -> dict[str, str]:
    o = compose["volumes"][volume]["driver_opts"]
    assert o.get("type") == "tmpfs", o
    return dict(kv.split("=", 1) if "=" in kv else (kv, "") for kv in o["o"].split(","))


# ---- the compose file ----------------------------------------------------------------------

def test_compose_file_is_valid_without_a_daemon(compose: dict[str, Any], workdir: Path) -> None:
    assert set(compose["services"]) == {SERVICE, DETECTOR, "mosquitto", "homeassistant"}
    r = dh.compose_run("config", "--quiet")
    assert r.returncode == 0, r.stderr
    # a broken file is refused: `config` validates, it does not merely load YAML
    bad = workdir / "docker-compose.yml"
    bad.write_text("services:\n  x:\n    image: a\n    restart: sometimes\n"
                   "    deploy: {resources: {reservations: {devices: [{capabilities: gpu}]}}}\n")
    r = subprocess.run([dh.COMPOSE, "-f", str(bad), "config"], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, DOCKER_HOST="unix:///nonexistent"))
    assert r.returncode != 0, r.stdout


def test_service_gets_the_gpu_with_video(compose: dict[str, Any]) -> None:
    devs = _devices(compose["services"][SERVICE])
    assert len(devs) == 1, devs
    d = devs[0]
    assert d.get("driver") == "nvidia", d
    caps = set(d["capabilities"])
    # gpu: the request; video: NVDEC (libnvcuvid). Docker turns the NVIDIA names into
    # NVIDIA_DRIVER_CAPABILITIES, replacing the image's, so compute (CUDA) must be listed too,
    # and utility for NVML (GPU stats over MQTT).
    assert {"gpu", "video", "compute", "utility"} <= caps, caps
    assert d.get("count") == "all" or d.get("device_ids"), d
    det = _devices(compose["services"][DETECTOR])
    assert len(det) == 1 and {"gpu", "compute"} <= set(det[0]["capabilities"]), det


def test_runtime_dir_is_the_only_thing_shared(compose: dict[str, Any]) -> None:
    svcs = compose["services"]
    rt = {}
    for name in (SERVICE, DETECTOR):
        s = svcs[name]
        for key in ("ipc", "pid", "network_mode", "volumes_from", "shm_size", "privileged"):
            assert key not in s, f"{name} has {key}: {s[key]!r}"
        assert s["environment"]["CUFRAMES_RUNTIME_DIR"] == RUNTIME, s["environment"]
        mounts = [v for v in _volumes(s) if v["target"] == RUNTIME]
        assert len(mounts) == 1 and mounts[0]["type"] == "volume", _volumes(s)
        rt[name] = mounts[0]
        assert not any(str(v).startswith("/dev/shm") for v in s.get("volumes", [])), s
    assert rt[SERVICE]["source"] == rt[DETECTOR]["source"], rt
    # nothing else is mounted by both
    shared = ({v["source"] for v in _volumes(svcs[SERVICE])}
              & {v["source"] for v in _volumes(svcs[DETECTOR])})
    assert shared == {rt[SERVICE]["source"]}, shared
    for v in rt.values():
        assert v.get("volume", {}).get("nocopy") is True, v  # ownership from the volume's opts
    # a tmpfs owned by the user both run as, mode 1770 (libcuframes' own choice of mode)
    opts = _tmpfs_opts(compose, rt[SERVICE]["source"])
    assert opts["mode"] == "1770", opts
    for name in (SERVICE, DETECTOR):
        uid, gid = svcs[name]["user"].split(":")
        assert (opts["uid"], opts["gid"]) == (uid, gid), (name, svcs[name]["user"], opts)
        assert uid not in ("0", "root"), name


def test_uid_and_gid_follow_the_settings() -> None:
    doc = dh.compose_config(env={"CUFRAMES_UID": "1234", "CUFRAMES_GID": "4321"})
    opts = _tmpfs_opts(doc, "cuframes-run")
    assert (opts["uid"], opts["gid"]) == ("1234", "4321"), opts
    for name in (SERVICE, DETECTOR):
        assert doc["services"][name]["user"] == "1234:4321", doc["services"][name]


def test_service_config_restart_and_healthcheck(compose: dict[str, Any]) -> None:
    s = compose["services"][SERVICE]
    cfg = [v for v in _volumes(s) if v["target"] == "/etc/cuframes"]
    assert len(cfg) == 1 and cfg[0]["type"] == "bind" and cfg[0]["read_only"], _volumes(s)
    assert Path(cfg[0]["source"]) == dh.DEPLOY / "config", cfg
    cmd = _command(s)
    assert cmd[:1] == ["--config"] and cmd[1].startswith("/etc/cuframes/"), cmd
    assert (dh.DEPLOY / "config" / Path(cmd[1]).name).is_file(), cmd
    for name in (SERVICE, DETECTOR, "mosquitto", "homeassistant"):
        assert compose["services"][name].get("restart") in ("always", "unless-stopped"), name
    hc = s["healthcheck"]
    assert hc["test"][0] in ("CMD", "CMD-SHELL") and "cuframes-healthcheck" in " ".join(
        hc["test"][1:]), hc
    assert not hc.get("disable"), hc

    def seconds(v: str) -> float:
        return sum(float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u]
                   for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", v))
    assert 0 < seconds(hc["timeout"]) < seconds(hc["interval"]), hc
    assert int(hc["retries"]) >= 2 and seconds(hc.get("start_period", "0s")) >= 10, hc
    # the image has the healthcheck script under that name
    _, stages = dh.parse_dockerfile(dh.DEPLOY / "Dockerfile")
    svc_stage = _stage(stages, s["build"]["target"])
    assert any(i.args.split()[-1] == "/usr/local/bin/cuframes-healthcheck"
               and "deploy/healthcheck.sh" in i.args for i in svc_stage.all("COPY")), \
        svc_stage.all("COPY")


def test_broker_and_detector_fit_together(compose: dict[str, Any]) -> None:
    import yaml
    m = compose["services"]["mosquitto"]
    assert m["image"].startswith("eclipse-mosquitto:"), m
    conf_dir = [v for v in _volumes(m) if v["target"] == "/mosquitto/config"]
    assert len(conf_dir) == 1 and Path(conf_dir[0]["source"]) == dh.DEPLOY / "mosquitto"
    conf = (dh.DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    port = int(re.search(r"^listener\s+(\d+)", conf, re.M).group(1))  # type: ignore[union-attr]
    for line in conf.splitlines():  # files the broker reads are in its mounted directories
        mm = re.match(r"^(password_file|acl_file|persistence_location)\s+(\S+)", line)
        if mm:
            assert mm.group(2).startswith(("/mosquitto/config/", "/mosquitto/data/")), line
    # the service's config and the detector talk to that broker
    cfg = yaml.safe_load((dh.DEPLOY / "config" / "cuframes.yaml").read_text())
    assert cfg["mqtt"]["host"] == "mosquitto" and int(cfg["mqtt"]["port"]) == port, cfg["mqtt"]
    assert "runtime_dir" not in cfg, "the compose file sets CUFRAMES_RUNTIME_DIR instead"
    d = compose["services"][DETECTOR]
    cmd = _command(d)
    assert f"--mqtt=mosquitto:{port}" in cmd, cmd
    assert d["environment"]["CUFRAMES_MQTT_USERNAME"] == cfg["mqtt"]["username"], d
    _, stages = dh.parse_dockerfile(dh.DEPLOY / "Dockerfile")
    det = _stage(stages, d["build"]["target"])
    script = next(a for a in cmd if a.endswith(".py"))
    assert any(i.args.split()[-1] == script and "examples/detector.py" in i.args
               for i in det.all("COPY")), (script, det.all("COPY"))
    # and the package the script imports from its own folder, next to it
    package = f"{script.rsplit('/', 1)[0]}/{dh.DETECTOR_APP.name}"
    assert any(i.args.split()[-1].rstrip("/") == package and "examples/detector_app" in i.args
               for i in det.all("COPY")), (package, det.all("COPY"))


def test_home_assistant_is_an_optional_profile(compose: dict[str, Any]) -> None:
    svcs = compose["services"]
    assert svcs["homeassistant"].get("profiles") == ["homeassistant"], svcs["homeassistant"]
    assert "home-assistant" in svcs["homeassistant"]["image"]
    for name in (SERVICE, DETECTOR, "mosquitto"):
        assert not svcs[name].get("profiles"), name
    assert "homeassistant" not in str(svcs[SERVICE].get("depends_on", "")), "a profile dependency"


# ---- the Dockerfile ------------------------------------------------------------------------

def _stage(stages: list[dh.Stage], name: str) -> dh.Stage:
    for s in stages:
        if s.name == name:
            return s
    raise AssertionError(f"no stage {name!r} in deploy/Dockerfile: {[s.name for s in stages]}")


DOWNLOADERS = re.compile(r"\b(curl|wget|pip3?\s+install|python3?\s+-m\s+pip|apt(-get)?\s+"
                         r"install|git\s+clone|conda|uv\s+pip|urllib|requests\.get|"
                         r"http\.client|urlopen)\b")


def test_dockerfile_stages(compose: dict[str, Any]) -> None:
    args, stages = dh.parse_dockerfile(dh.DEPLOY / "Dockerfile")
    build = _stage(stages, "build")
    assert re.match(r"nvidia/cuda:[\d.]+-(cudnn\d*-)?devel-ubuntu[\d.]+$", build.base), build.base
    for target in ("service", "detector"):
        s = _stage(stages, target)
        assert re.match(r"nvidia/cuda:[\d.]+-(cudnn\d*-)?runtime-ubuntu[\d.]+$", s.base), s.base
        # the same CUDA and distribution as the build (the wheel's Python ABI, the libraries)
        assert s.base.split(":")[1].split("-")[0] == build.base.split(":")[1].split("-")[0]
        assert s.base.rsplit("-", 1)[1] == build.base.rsplit("-", 1)[1], (s.base, build.base)
        # compilers stay in the build stage
        for run in s.all("RUN"):
            assert not re.search(r"build-essential|-dev\b|\bcmake\b|nvcc", run.args), run
    assert stages[-1].name == "service", "the default target must be the service"
    for name in (SERVICE, DETECTOR):
        assert compose["services"][name]["build"]["target"] in {s.name for s in stages}
    # FFmpeg comes from the distribution: -dev packages in the build, never compiled here
    runs = " ".join(r.args for r in build.all("RUN"))
    assert re.search(r"apt-get install[^&]*libavcodec-dev", runs), runs
    assert "ffmpeg.org" not in runs and "FFmpeg.git" not in runs


def test_dockerfile_bases_and_cuda_are_build_args() -> None:
    """The bases are build args, NVIDIA's CUDA images by default, so that any Debian or Ubuntu
    base can stand in (CI's scripts/image-test.sh builds on Debian 12); CUFRAMES_CUDA=OFF builds
    without nvcc; the build stage installs what it needs by name."""
    path = dh.DEPLOY / "Dockerfile"
    _, stages = dh.parse_dockerfile(path)
    for st in stages:
        assert re.fullmatch(r"\$\{(BUILD|RUNTIME)_IMAGE\}\s+AS\s+\w+", st.instructions[0].args,
                            re.IGNORECASE), f"stage {st.name}: FROM {st.instructions[0].args}"
    _, given = dh.parse_dockerfile(path, {"BUILD_IMAGE": "debian:12",
                                          "RUNTIME_IMAGE": "debian:12-slim"})
    assert {s.name: s.base for s in given} == {
        "build": "debian:12", "detector": "debian:12-slim", "service": "debian:12-slim"}
    _, other_cuda = dh.parse_dockerfile(path, {"CUDA_VERSION": "12.4.1"})
    assert all(s.base.startswith("nvidia/cuda:12.4.1-") for s in other_cuda), other_cuda
    build = _stage(stages, "build")
    assert [a.args for a in build.all("ARG") if a.args.startswith("CUFRAMES_CUDA")] == [
        "CUFRAMES_CUDA=ON"], build.all("ARG")
    runs = " ".join(r.args for r in build.all("RUN"))
    # the CMake build and the wheel both follow it; nothing else decides
    assert '-DCUFRAMES_CUDA="${CUFRAMES_CUDA}"' in runs, runs
    assert 'cmake.define.CUFRAMES_CUDA="${CUFRAMES_CUDA}"' in runs, runs
    assert not re.search(r"CUFRAMES_CUDA=(ON|OFF|AUTO)\b", runs), runs
    apt = re.search(r"apt-get install ([^&]*)", runs)
    assert apt, runs
    pkgs = set(apt.group(1).split())
    # Paho MQTT C++'s CMake config looks for OpenSSL; pip needs the CA store on a bare base
    assert {"libpaho-mqttpp-dev", "libssl-dev", "ca-certificates", "python3-venv"} <= pkgs, pkgs


def test_no_gpu_override_takes_away_only_what_it_must(compose: dict[str, Any]) -> None:
    """The override for machines without an NVIDIA GPU (deploy/no-gpu.override.yml, what CI's
    image stage runs) removes the GPU requests and the tmpfs size podman 4.3 refuses, and
    changes nothing else."""
    import yaml

    reset = object()

    class Loader(yaml.SafeLoader):
        pass
    Loader.add_constructor("!reset", lambda loader, node: reset)
    override = yaml.load((dh.DEPLOY / "no-gpu.override.yml").read_text(), Loader=Loader)
    gpu_services = sorted(n for n, s in compose["services"].items() if _devices(s))
    assert gpu_services == sorted([SERVICE, DETECTOR]), gpu_services
    no_devices = {"deploy": {"resources": {"reservations": {"devices": reset}}}}
    assert set(override) == {"services", "volumes"}, override
    assert override["services"] == {n: no_devices for n in gpu_services}, override["services"]
    raw = yaml.safe_load((dh.DEPLOY / "docker-compose.yml").read_text())
    opts = raw["volumes"]["cuframes-run"]["driver_opts"]["o"].split(",")
    assert any(o.startswith("size=") for o in opts), opts
    assert override["volumes"] == {"cuframes-run": {"driver_opts": {"o": ",".join(
        o for o in opts if not o.startswith("size="))}}}, override["volumes"]


def test_runtime_stages_run_as_a_user_and_download_nothing() -> None:
    _, stages = dh.parse_dockerfile(dh.DEPLOY / "Dockerfile")
    for target in ("service", "detector"):
        s = _stage(stages, target)
        user = s.last("USER")
        assert user is not None, f"stage {target} has no USER"
        assert user.args.split(":")[0] not in ("root", "0"), user
        assert all(i.line < user.line for i in s.all("RUN")), f"{target}: RUN after USER"
        uid = re.search(r"useradd[^&]*--uid\s+\"?\$\{?(\w+)", " ".join(
            r.args for r in s.all("RUN")))
        assert uid and uid.group(1) == "CUFRAMES_UID", f"{target}: the user is not made"
        assert any(a.args.startswith("CUFRAMES_UID=10001") for a in s.all("ARG")), target
        run_time = [i for i in s.instructions if i.cmd in ("CMD", "ENTRYPOINT", "HEALTHCHECK")]
        assert run_time, f"{target} has no CMD/ENTRYPOINT"
        for i in run_time:
            assert not DOWNLOADERS.search(i.args), f"{target}: {i.cmd} {i.args}"
    # what those run downloads nothing either
    for f in (dh.HEALTHCHECK, dh.DETECTOR, *sorted(dh.DETECTOR_APP.glob("*.py"))):
        text = "\n".join(ln for ln in f.read_text().splitlines()
                         if not ln.lstrip().startswith("#"))
        assert not DOWNLOADERS.search(text), f"{f}: {DOWNLOADERS.search(text)}"


def test_dockerfile_copies_what_exists() -> None:
    _, stages = dh.parse_dockerfile(dh.DEPLOY / "Dockerfile")
    for s in stages:
        for c in s.all("COPY"):
            words = [w for w in c.args.split() if not w.startswith("--")]
            if any(w.startswith("--from") for w in c.args.split()):
                continue
            for src in words[:-1]:
                assert (dh.ROOT / src).exists(), f"Dockerfile:{c.line}: COPY {src}: missing"


def _dockerignored(patterns: list[str], path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parent
    directories decides; `!` re-includes."""
    def rx(pat: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**", i):
                out += ".*"
                i += 2
                if pat.startswith("/", i):
                    out += "/?"
                    i += 1
            elif pat[i] == "*":
                out += "[^/]*"
                i += 1
            elif pat[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pat[i])
                i += 1
        return re.compile(out + "$")
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        r = rx(pat[1:] if neg else pat)
        if any(r.match(p) for p in prefixes):
            excluded = not neg
    return excluded


def test_root_dockerignore_is_the_dockerfiles() -> None:
    """docker-compose 1.x's classic builder reads only <context>/.dockerignore; BuildKit reads
    deploy/Dockerfile.dockerignore. Both must say the same."""
    assert (dh.ROOT / ".dockerignore").read_text() == (
        dh.DEPLOY / "Dockerfile.dockerignore").read_text()


def test_build_context_keeps_what_the_dockerfile_copies() -> None:
    patterns = [ln.strip() for ln in (dh.DEPLOY / "Dockerfile.dockerignore").read_text()
                .splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    _, stages = dh.parse_dockerfile(dh.DEPLOY / "Dockerfile")
    copied = 0
    for st in stages:
        for c in st.all("COPY"):
            if any(w.startswith("--from") for w in c.args.split()):
                continue
            for src in [w for w in c.args.split() if not w.startswith("--")][:-1]:
                p = dh.ROOT / src
                files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()
                                                 and "__pycache__" not in f.parts]
                assert files, src
                for f in files:
                    rel = str(f.relative_to(dh.ROOT))
                    assert not _dockerignored(patterns, rel), f"COPY {src}: {rel} is ignored"
                    copied += 1
    assert copied > 50, copied
    for rel in ("build/service/cuframes-service", "build-asan/core/x.o", ".git/HEAD",
                "deploy/.env", "deploy/mosquitto/passwd", "deploy/homeassistant/x.yaml",
                "tests/service/svc.py", "python/dist/cuframes.whl",
                "core/src/__pycache__/x.pyc", "examples/demo.cc", ".gpu/deps.tar.xz"):
        assert _dockerignored(patterns, rel), f"{rel} would be sent to the builder"


# ---- the shipped configs, run by the real programs ------------------------------------------

def test_deploy_config_is_valid() -> None:
    r = svc.run_service(["--check-config", "--config", str(dh.DEPLOY / "config" / "cuframes.yaml")])
    assert r.returncode == 0, r.stderr
    assert re.search(r": OK \(\d+ cameras?\)", r.stdout), r.stdout


def test_mosquitto_conf_requires_login(workdir: Path) -> None:
    """The shipped mosquitto.conf, with its paths moved into the test's directory: anonymous
    clients are refused, a user from the password file gets in, retained messages persist."""
    port = svc.free_port()
    conf = (dh.DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    conf = re.sub(r"^listener\s+\d+.*$", f"listener {port} 127.0.0.1", conf, flags=re.M)
    conf = conf.replace("/mosquitto/config/", f"{workdir}/").replace("/mosquitto/data/",
                                                                      f"{workdir}/data/")
    conf = re.sub(r"^log_dest\s+stdout", f"log_dest file {workdir}/mosquitto.log", conf,
                  flags=re.M)
    import pwd
    conf += f"\nuser {pwd.getpwuid(os.geteuid()).pw_name}\n"
    (workdir / "data").mkdir()
    r = subprocess.run([mh.MOSQUITTO_PASSWD, "-c", "-b", str(workdir / "passwd"), "cuframes",
                        "s3cret"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    os.chmod(workdir / "passwd", 0o600)
    (workdir / "mosquitto.conf").write_text(conf)
    proc = subprocess.Popen([mh.MOSQUITTO, "-c", str(workdir / "mosquitto.conf")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def connack(*auth: str) -> Any:
            try:
                return mh.mqtt_connack(port, *auth)
            except OSError:
                return None
        rc = svc.wait_for(lambda: connack("cuframes", "s3cret") == 0 or proc.poll() is not None,
                          15, "mosquitto accepting user cuframes")
        assert proc.poll() is None, (workdir / "mosquitto.log").read_text()
        assert rc
        assert connack() in (4, 5), "anonymous clients must be refused"
        assert connack("cuframes", "wrong") in (4, 5), "a wrong password must be refused"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---- runtime-deps.sh ----------------------------------------------------------------------

def test_runtime_deps_lists_the_service_libraries() -> None:
    assert os.access(dh.CLI_BIN, os.X_OK), f"{dh.CLI_BIN} is missing: build it (scripts/build.sh)"
    r = subprocess.run([str(dh.RUNTIME_DEPS), str(svc.SERVICE_BIN), str(dh.CLI_BIN)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pkgs = r.stdout.split()
    assert pkgs == sorted(set(pkgs)), pkgs
    for want in ("libavcodec", "libavformat", "libavutil", "libswscale", "libyaml-cpp",
                 "libspdlog", "libpaho-mqttpp3"):
        assert any(p.startswith(want) for p in pkgs), (want, pkgs)
    for p in pkgs:
        assert not p.endswith("-dev"), p
        st = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                            text=True)
        assert st.stdout == "install ok installed", (p, st.stdout, st.stderr)


def test_runtime_deps_refuses_a_library_of_no_package(workdir: Path) -> None:
    (workdir / "lib.c").write_text("int cuframes_test_fn(void) { return 7; }\n")
    (workdir / "main.c").write_text("int cuframes_test_fn(void);\n"
                                    "int main(void) { return cuframes_test_fn() - 7; }\n")
    for args in (["-shared", "-fPIC", "-o", "libcftest.so", "lib.c"],
                 ["-o", "prog", "main.c", "-L.", "-lcftest", f"-Wl,-rpath,{workdir}"]):
        r = subprocess.run(["cc", *args], cwd=workdir, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
    assert subprocess.run([str(workdir / "prog")]).returncode == 0
    r = subprocess.run([str(dh.RUNTIME_DEPS), str(workdir / "prog")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"no package owns {workdir}/libcftest.so" in r.stderr, r.stderr
    (workdir / "libcftest.so").unlink()  # now the loader cannot find it at all
    r = subprocess.run([str(dh.RUNTIME_DEPS), str(workdir / "prog")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "libcftest.so, which is not found" in r.stderr, r.stderr


# ---- the healthcheck, against a real service ------------------------------------------------

def _health(runtime_dir: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, CUFRAMES_RUNTIME_DIR=runtime_dir, CUFRAMES_CLI=str(dh.CLI_BIN))
    e.update(env)
    return subprocess.run([str(dh.HEALTHCHECK)], capture_output=True, text=True, timeout=30,
                          env=e)


def _wait_health(runtime_dir: str, healthy: bool, pattern: str, timeout: float,
                 s: svc.Service, **env: str) -> subprocess.CompletedProcess[str]:
    last: list[subprocess.CompletedProcess[str]] = []

    def check() -> bool:
        r = _health(runtime_dir, **env)
        last[:] = [r]
        return (r.returncode == 0) == healthy and re.search(pattern, r.stdout) is not None
    svc.wait_for(check, timeout, f"healthcheck {'healthy' if healthy else 'unhealthy'} "
                 f"/{pattern}/", lambda: f"last: {last[0] if last else None}\n{s.describe()}")
    return last[0]


@pytest.fixture(scope="module", autouse=True)
def _cli_built() -> None:
    if not os.access(dh.CLI_BIN, os.X_OK):
        pytest.fail(f"{dh.CLI_BIN} is missing: build it (scripts/build.sh)")


CAMS = {"front": {"url": "testsrc://?width=320&height=240&fps=20"},
        "back": {"url": "testsrc://?width=256&height=144&fps=10"}}


def test_healthcheck_healthy_then_crash(service: Callable[..., svc.Service],
                                        runtime_dir: str) -> None:
    r = _health(runtime_dir)
    assert r.returncode == 1 and "not running" in r.stdout, r  # nothing there yet
    s = service(CAMS)
    for cam in CAMS:
        s.wait_state(cam, "streaming", 15)
    r = _wait_health(runtime_dir, True, r"^healthy: 2 of 2 cameras streaming", 15, s)
    assert r.stdout.count("\n") == 1, r.stdout
    # SIGKILL: the status file stays, the process is gone
    s.stop(signal.SIGKILL)
    r = _health(runtime_dir)
    assert r.returncode == 1 and f"pid {s.pid}" in r.stdout and "crashed" in r.stdout, r


def test_healthcheck_clean_stop(service: Callable[..., svc.Service], runtime_dir: str) -> None:
    s = service({"front": CAMS["front"]})
    _wait_health(runtime_dir, True, r"^healthy: 1 of 1 camera streaming,", 15, s)
    assert s.stop() == 0
    r = _health(runtime_dir)
    assert r.returncode == 1 and "not running" in r.stdout, r


def test_healthcheck_cameras_down(service: Callable[..., svc.Service], runtime_dir: str,
                                  workdir: Path) -> None:
    s = service({"front": CAMS["front"], "gone": {"url": str(workdir / "missing.mp4")}})
    why = s.wait_state("gone", "error", 15)["error"]
    assert why, "a camera in state error has a reason"
    # the line names the camera that is down, its state and the service's reason
    r = _wait_health(runtime_dir, True, r"^healthy: 1 of 2 cameras streaming.*; not streaming: "
                     + re.escape(f"gone (error: {why})"), 15, s)
    r = _health(runtime_dir, CUFRAMES_HEALTH_MIN_STREAMING="2")
    assert r.returncode == 1, r
    assert (f"1 of 2 cameras streaming, at least 2 wanted; not streaming: gone (error: {why})"
            in r.stdout), r.stdout


@pytest.mark.skipif(svc.gpu_present(), reason="needs a machine without a GPU: CI")
def test_healthcheck_cuda_camera_without_gpu(service: Callable[..., svc.Service],
                                             runtime_dir: str) -> None:
    """The shipped deploy config's `memory: cuda` on a machine without a GPU: the healthcheck
    says which cameras are down and why, in the service's words."""
    s = service({"front": CAMS["front"], "back": dict(CAMS["back"], memory="cuda")})
    why = s.wait_state("back", "error", 15)["error"]
    assert why.startswith("memory: cuda, but CUDA device 0 is not usable"), why
    r = _wait_health(runtime_dir, True, r"^healthy: 1 of 2", 15, s)
    assert r.stdout.rstrip().endswith(f"; not streaming: back (error: {why})"), r.stdout
    r = _health(runtime_dir, CUFRAMES_HEALTH_MIN_STREAMING="2")
    assert r.returncode == 1, r
    assert f"not streaming: back (error: {why})" in r.stdout, r.stdout


def test_healthcheck_hung_service(service: Callable[..., svc.Service], runtime_dir: str) -> None:
    s = service(CAMS, status_interval="200ms")
    _wait_health(runtime_dir, True, r"^healthy", 15, s, CUFRAMES_HEALTH_MAX_AGE="2")
    s.proc.send_signal(signal.SIGSTOP)  # the main loop stops rewriting the status file
    try:
        _wait_health(runtime_dir, False, r"last written \d+ s ago \(limit 2 s\): the service "
                     r"is stuck", 15, s, CUFRAMES_HEALTH_MAX_AGE="2")
    finally:
        s.proc.send_signal(signal.SIGCONT)
    _wait_health(runtime_dir, True, r"^healthy: 2 of 2", 15, s, CUFRAMES_HEALTH_MAX_AGE="2")


def test_healthcheck_ring_not_answering(service: Callable[..., svc.Service],
                                        runtime_dir: str) -> None:
    s = service(CAMS)
    _wait_health(runtime_dir, True, r"^healthy: 2 of 2", 15, s)
    os.unlink(Path(runtime_dir) / "cam-back.sock")  # detectors can no longer find that ring
    r = _health(runtime_dir)
    assert r.returncode == 1, r
    assert f"camera back is streaming but its ring cam-back does not answer in {runtime_dir}" \
        in r.stdout, r.stdout
