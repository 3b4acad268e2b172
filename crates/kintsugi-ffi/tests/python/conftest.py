"""Fixtures for the Python tests of the generated bindings: the bindings themselves (from
KINTSUGI_BINDINGS_DIR, or generated into a temporary folder) and a real `kintsugi serve` on a
free loopback port (KINTSUGI_BIN, or built with cargo)."""

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def _bindings_dir() -> Path:
    given = os.environ.get("KINTSUGI_BINDINGS_DIR")
    if given:
        return Path(given)
    out = Path(tempfile.mkdtemp(prefix="kintsugi-bindings-"))
    subprocess.run(["bash", str(ROOT / "crates/kintsugi-ffi/bindings.sh"), str(out)], check=True)
    return out


def _server_binary() -> Path:
    given = os.environ.get("KINTSUGI_BIN")
    if given:
        return Path(given)
    subprocess.run(["cargo", "build", "-p", "kintsugi-cli"], cwd=ROOT, check=True)
    return TARGET / "debug" / "kintsugi"


@pytest.fixture(scope="session")
def bindings_dir():
    """The folder the bindings were generated into."""
    return _bindings_dir()


@pytest.fixture(scope="session")
def kintsugi(bindings_dir):
    """The generated Python module."""
    sys.path.insert(0, str(bindings_dir / "python"))
    import kintsugi_ffi

    return kintsugi_ffi


class Server:
    """`kintsugi serve` on 127.0.0.1, port 0; its URL from the JSON "listening" line."""

    def __init__(self, data: Path):
        self.process = subprocess.Popen(
            [str(_server_binary()), "serve", "--listen", "127.0.0.1:0", "--log-format", "json",
             "--data", str(data)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        found = threading.Event()
        self.url = None

        def read_log():
            for line in self.process.stderr:
                try:
                    fields = json.loads(line).get("fields", {})
                except ValueError:
                    continue
                if "listening" in fields.get("message", "") and not found.is_set():
                    self.url = "http://" + fields["address"]
                    found.set()

        threading.Thread(target=read_log, daemon=True).start()
        if not found.wait(30):
            self.process.kill()
            raise RuntimeError("kintsugi serve did not start listening within 30 s")

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path / "server")
    yield running
    running.stop()
