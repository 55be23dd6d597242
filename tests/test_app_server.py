"""``hubtools app`` serves where it is told: ``--host`` / ``--port``, else GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT as Gradio users and Spaces set them. Each case runs the real command and asks
the server it started for its page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

#: a second loopback address: an app found there was told so, the default is 127.0.0.1
OTHER_LOOPBACK = "127.0.0.2"
LAUNCH = "from hubtools.cli import main; main()"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def run_app(args: list[str], env_vars: dict[str, str], home: Path, host: str, port: int,
            *, timeout: float = 90) -> subprocess.Popen:
    """Start ``hubtools app ARGS`` with ``env_vars``; return it once ``host:port`` answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUBTOOLS_", "GRADIO_"))}
    env.update(env_vars, HUBTOOLS_APP_DIR=str(home / "app"), HF_HOME=str(home / "hf"), HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False")
    log = home / "app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "app", *args], env=env, cwd=home,
                                stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not answers(host, port):
        time.sleep(0.5)
    if not answers(host, port):
        stop(proc)
        pytest.fail(f"hubtools app did not answer on {host}:{port}:\n{log.read_text()[-3000:]}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_app_serves_on_gradio_server_name_and_port_when_no_option_is_given(tmp_path):
    port = free_port(OTHER_LOOPBACK)
    proc = run_app([], {"GRADIO_SERVER_NAME": OTHER_LOOPBACK, "GRADIO_SERVER_PORT": str(port)}, tmp_path,
                   OTHER_LOOPBACK, port)
    try:
        assert not answers("127.0.0.1", port)  # bound to the name it was given, not the default
    finally:
        stop(proc)


def test_host_and_port_options_win_over_the_environment(tmp_path):
    env_port, port = free_port(OTHER_LOOPBACK), free_port("127.0.0.1")
    proc = run_app(["--host", "127.0.0.1", "--port", str(port)],
                   {"GRADIO_SERVER_NAME": OTHER_LOOPBACK, "GRADIO_SERVER_PORT": str(env_port)}, tmp_path,
                   "127.0.0.1", port)
    try:
        assert not answers(OTHER_LOOPBACK, env_port) and not answers(OTHER_LOOPBACK, port)
    finally:
        stop(proc)
