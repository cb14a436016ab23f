"""A throwaway Docker registry (`docker-registry serve`) on a loopback port.

Storage lives in a temporary directory that `stop()` deletes. `reset()` empties
the registry between runs so every push lands in an empty registry.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CONFIG = """version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
"""


class RegistryError(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def manifest_blobs(url: str, repo: str, tag: str) -> list[tuple[str, int]]:
    """(digest, size) of the config and layers of `repo:tag` as the registry serves it.

    Read back rather than taken from the pushed layout: skopeo may substitute a
    layer with an equivalent blob the registry already has."""
    req = urllib.request.Request(f"{url}/v2/{repo}/manifests/{tag}",
                                 headers={"Accept": MANIFEST_ACCEPT})
    with urllib.request.urlopen(req, timeout=30) as r:
        manifest = json.load(r)
    items = [manifest["config"]] + manifest["layers"]
    return [(d["digest"], int(d["size"])) for d in items]


class Registry:
    def __init__(self, name: str, parent: Path, binary: str = "docker-registry"):
        self.name = name
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix=f"registry-{name}-", dir=parent))
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Registry":
        for _ in range(3):
            self.port = free_port()
            storage = self.dir / "storage"
            storage.mkdir(parents=True, exist_ok=True)
            config = self.dir / "config.yml"
            config.write_text(CONFIG.format(storage=storage, port=self.port))
            log = open(self.dir / "registry.log", "ab")
            self.proc = subprocess.Popen(
                [self.binary, "serve", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )
            log.close()
            if self._wait_ready(10.0):
                return self
            self._kill()
        raise RegistryError(
            f"registry {self.name} did not start; see {self.dir / 'registry.log'}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.05)
        return False

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def reset(self) -> None:
        """Restart with empty storage, on a new port.

        A new port also keeps containers/image's blob-info cache (which remembers
        blob locations per registry host) from sending skopeo and buildah after
        blobs that vanished with the old storage. Read `host` after a reset."""
        self._kill()
        shutil.rmtree(self.dir / "storage", ignore_errors=True)
        self.start()

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Registry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
