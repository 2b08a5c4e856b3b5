"""build.py bounded in time and output, against a real Docker engine: a registry that stalls the
engine's upload (the fault proxy in front of the loopback registry), a build that never ends, a
build whose output is one 50 MB line."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from playbookctl import build
from playbookctl.errors import BuildError
from tests.support.faultproxy import FaultProxy
from tests.support.timing import ends_by

pytestmark = pytest.mark.integration


def _context(directory: Path, containerfile: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Containerfile").write_text(containerfile)
    return directory


def _uploads(method: str, path: str) -> bool:
    return method in ("PATCH", "PUT") and "/blobs/uploads/" in path


@pytest.mark.timeout(120)  # without its deadline it would hang: fail by name
def test_a_stalled_blob_upload_ends_the_push_within_push_timeout(
    docker_engine: str, base_image: str, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    ctx = _context(tmp_path / "ctx", f"FROM {base_image}\nRUN echo stalled > /stalled\n")
    ref = f"{fault_proxy.host}/limits/stall:1"
    healthy = f"{fault_proxy.host}/limits/healthy:1"
    with build.Engine(docker_engine) as unhurried:
        unhurried.build(ctx, tag=ref)
        unhurried.tag(ref, healthy)
        # Through the same proxy, healthy: the push completes (the stand-in base's ~14 MB
        # layers through the Python proxy on a loaded machine: not within the 6 s below).
        assert unhurried.push(healthy).startswith("sha256:")
    with build.Engine(docker_engine, push_timeout=6.0) as engine:
        fault_proxy.stall_next(-1, match=_uploads)
        started = time.monotonic()
        with pytest.raises(BuildError) as err:
            engine.push(ref, retries=3)
        elapsed = time.monotonic() - started
    # Without push-timeout the stall (300 s) would last until push-stall-timeout (60 s).
    assert elapsed < ends_by(6.0, runaway=build.DEFAULT_PUSH_STALL_TIMEOUT), elapsed
    message = str(err.value)
    assert "\n" not in message
    assert "did not finish within 6 s (push-timeout)" in message
    assert any(status == -2 for _m, _p, status in fault_proxy.log)  # it really was held


@pytest.mark.timeout(120)  # without its deadline it would hang: fail by name
def test_a_build_that_never_ends_stops_at_build_timeout(
    docker_engine: str, base_image: str, tmp_path: Path
) -> None:
    ctx = _context(tmp_path / "ctx", f"FROM {base_image}\nRUN sleep 120\n")
    with build.Engine(docker_engine, build_timeout=4.0) as engine:
        started = time.monotonic()
        with pytest.raises(BuildError, match=r"did not finish within 4 s \(build-timeout\)"):
            engine.build(ctx, tag="limits/forever:1")
        # Without build-timeout the build would end with its RUN sleep, 120 s in.
        assert time.monotonic() - started < ends_by(4.0, runaway=120.0)


def test_a_50_mb_output_line_is_capped_in_the_error(
    docker_engine: str, base_image: str, tmp_path: Path
) -> None:
    ctx = _context(
        tmp_path / "ctx",
        f"FROM {base_image}\nRUN head -c 50000000 /dev/zero | tr '\\000' x; echo; exit 3\n",
    )
    seen: list[str] = []
    with build.Engine(docker_engine) as engine, pytest.raises(BuildError) as err:
        engine.build(ctx, tag="limits/loud:1", on_line=seen.append)
    message = str(err.value)
    assert len(message) < 20_000, len(message)
    assert "characters cut" in message
    assert "RUN head -c" in message  # the failing step is still named
    longest = max(seen, key=len)
    assert len(longest) <= build.LINE_LIMIT + 100, longest.replace("x", "")


def test_lines_keep_head_and_tail_and_count_the_cut() -> None:
    got: list[str] = []
    lines = build._Lines(got.append)
    lines.feed("short\n")
    for _ in range(1000):  # one line arriving in many pieces, never a newline
        lines.feed("a" * 5000)
    lines.feed("THE-END\nnext\n")
    assert got[0] == "short"
    assert got[2] == "next"
    long = got[1]
    assert len(long) < build.LINE_LIMIT + 100
    assert long.startswith("a" * 100)
    assert long.endswith("aTHE-END")
    head, rest = long.split(" [... ", 1)
    count, tail = rest.split(" characters cut ...] ", 1)
    assert len(head) + int(count) + len(tail) == 5_000_000 + len("THE-END")


@pytest.mark.parametrize("seed", range(20))
def test_lines_are_capped_however_the_stream_is_cut(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(
        rng.choice(["a" * rng.randint(0, 6000), "\n", "b" * rng.randint(0, 1500)])
        for _ in range(200)
    )
    got: list[str] = []
    lines = build._Lines(got.append)
    i = 0
    while i < len(text):
        n = rng.randint(1, 7000)
        lines.feed(text[i : i + n])
        i += n
    lines.flush()
    want = text.split("\n")
    if want and want[-1] == "":
        want.pop()
    assert len(got) == len(want)
    for line, original in zip(got, want, strict=True):
        assert len(line) <= build.LINE_LIMIT + 50
        if len(original) <= build.LINE_LIMIT:
            assert line == original
        else:
            head, rest = line.split(" [... ", 1)
            count, tail = rest.split(" characters cut ...] ", 1)
            assert original.startswith(head)
            assert original.endswith(tail)
            assert len(head) + int(count) + len(tail) == len(original)


_DRIP_BODY = json.dumps({"Config": {"Labels": {"a": "b" * 200}}}).encode()


class _DripEngine(BaseHTTPRequestHandler):
    """An engine that answers /version, then sends every other answer a byte per 0.3 s (a real
    engine can't be made to; only the failure it stands for is tested here)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith("/version"):
            body = json.dumps({"ApiVersion": "1.41", "Version": "fake"}).encode()
            delay = 0.0
        else:
            body, delay = _DRIP_BODY, 0.3
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if not delay:
                self.wfile.write(body)
                return
            for i in range(len(body)):
                time.sleep(delay)
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
        except OSError:
            return  # the client hung up: what the test wants


def test_a_drip_fed_engine_answer_ends_within_the_call_limit() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DripEngine)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"tcp://127.0.0.1:{server.server_address[1]}"
        with build.Engine(url, timeout=30, call_timeout=2.0) as engine:
            started = time.monotonic()
            with pytest.raises(BuildError, match=r"x:1: inspect: did not finish within 2 s"):
                engine.labels("x:1")
            # Without the limit the answer takes a byte per 0.3 s (the socket timeout, 30 s,
            # never fires).
            assert time.monotonic() - started < ends_by(2.0, runaway=len(_DRIP_BODY) * 0.3)
    finally:
        server.shutdown()
        server.server_close()


def test_no_deadline_thread_outlives_its_call(docker_engine: str, base_image: str) -> None:
    before = threading.active_count()
    with build.Engine(docker_engine) as engine:
        engine.labels(base_image)
    assert threading.active_count() <= before


def _pushed_base(engine: build.Engine, base_image: str, repo: str) -> None:
    """The base's layers already in `repo` (pushed healthy, through the proxy): a later push
    there uploads only the layer our build added."""
    engine.tag(base_image, f"{repo}:base")
    assert engine.push(f"{repo}:base").startswith("sha256:")


def _top_layer(engine: build.Engine, ref: str) -> str:
    """The id the engine's push progress gives the image's last layer (its DiffID, short)."""
    info = engine._api.inspect_image(ref)
    return str(info["RootFS"]["Layers"][-1]).removeprefix("sha256:")[:12]


def test_a_stalled_layer_upload_ends_the_push_at_push_stall_timeout_naming_the_layer(
    docker_engine: str, base_image: str, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The registry holds the upload: no bytes move, so the push ends after push-stall-timeout
    (not push-timeout), in one line naming the layer and how far it got; not retried."""
    ctx = _context(
        tmp_path / "ctx", f"FROM {base_image}\nRUN head -c 2000000 /dev/urandom > /payload\n"
    )
    repo = f"{fault_proxy.host}/limits/stall-layer"
    with build.Engine(docker_engine, push_timeout=120.0, push_stall_timeout=3.0) as engine:
        _pushed_base(engine, base_image, repo)
        engine.build(ctx, tag=f"{repo}:1")
        layer = _top_layer(engine, f"{repo}:1")
        fault_proxy.stall_next(-1, match=_uploads)
        started = time.monotonic()
        with pytest.raises(BuildError) as err:
            engine.push(f"{repo}:1", retries=3)
        elapsed = time.monotonic() - started
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{repo}:1: push: stalled: no progress for 3 s (push-stall-timeout)")
    assert f"on layer {layer} (" in message, message
    assert " sent); stopped" in message
    # Without push-stall-timeout the stall (300 s) would last until push-timeout (120 s).
    assert 3.0 <= elapsed < ends_by(3.0, runaway=120.0), elapsed
    held = [p for m, p, status in fault_proxy.log if status == -2 and m == "PATCH"]
    assert len(held) == 1  # the layer's upload, held once: a stall is not tried again


def test_a_stall_after_the_layers_names_the_manifest_upload(
    docker_engine: str, base_image: str, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    ctx = _context(tmp_path / "ctx", f"FROM {base_image}\nRUN echo x > /x\n")
    repo = f"{fault_proxy.host}/limits/stall-manifest"
    with build.Engine(docker_engine, push_timeout=120.0, push_stall_timeout=3.0) as engine:
        engine.build(ctx, tag=f"{repo}:1")
        fault_proxy.stall_next(-1, match=lambda m, p: m == "PUT" and "/manifests/" in p)
        with pytest.raises(BuildError) as err:
            engine.push(f"{repo}:1")
    assert "after every layer was sent (the image config or manifest upload); stopped" in str(
        err.value
    )


def test_a_slow_push_that_keeps_progressing_is_not_cut(
    docker_engine: str, base_image: str, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The registry reads the upload slowly but steadily: the push takes well over
    push-stall-timeout and completes. The engine reports bytes as it hands them to the kernel,
    so its reports come in bursts (a third of the socket's send buffer) and the last one comes
    when the buffer (~6 MB on loopback) still has to drain: at 3 MB/s, gaps of ~0.5 s and a
    last one of ~2 s, against a limit of 6 s (4 s left a busy runner too little room). The
    throttle holds the push to 12 s at the least, past the limit whatever the load."""
    ctx = _context(
        tmp_path / "ctx", f"FROM {base_image}\nRUN head -c 36000000 /dev/urandom > /payload\n"
    )
    repo = f"{fault_proxy.host}/limits/slow"
    stall = 6.0
    with build.Engine(docker_engine, push_timeout=120.0, push_stall_timeout=stall) as engine:
        _pushed_base(engine, base_image, repo)
        engine.build(ctx, tag=f"{repo}:1")
        fault_proxy.throttle_next(-1, match=_uploads, rate=3_000_000)
        started = time.monotonic()
        digest = engine.push(f"{repo}:1")
        elapsed = time.monotonic() - started
    assert digest.startswith("sha256:")
    assert elapsed > 1.5 * stall, elapsed  # it really was slow: well past the stall limit
    assert all(status >= 0 for _m, _p, status in fault_proxy.log)  # nothing held or dropped
