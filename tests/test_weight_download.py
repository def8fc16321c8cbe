"""Downloads from a real HTTP server on 127.0.0.1: resume, checksum, offline; nothing registered
on failure."""
import hashlib
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from engine.bundles.download import DownloadError, download
from engine.bundles.registry import WeightRegistry
from engine.model import DELTA_EMBEDDER_PREFIX, build_network
from tests.conftest import randomize


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single-range support (enough for resumable downloads)."""

    ranges_seen: list = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        header = self.headers.get("Range")
        if not header:
            return super().do_GET()
        RangeHandler.ranges_seen.append(header)
        path = self.translate_path(self.path)
        data = open(path, "rb").read()
        start = int(header.split("=")[1].split("-")[0])
        body = data[start:]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.ranges_seen = []
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_md5(server, tmp_path):
    root, base = server
    payload = bytes(range(256)) * 5000
    (root / "w.pth").write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    out = download(f"{base}/w.pth", tmp_path / "dl" / "w.pth", md5=md5, progress=False)
    assert out.read_bytes() == payload and not (tmp_path / "dl" / "w.pth.part").exists()


def test_download_resumes_a_partial_file(server, tmp_path):
    root, base = server
    payload = bytes(range(256)) * 5000
    (root / "w.pth").write_bytes(payload)
    target = tmp_path / "dl" / "w.pth"
    target.parent.mkdir()
    (target.parent / "w.pth.part").write_bytes(payload[:500_000])
    download(f"{base}/w.pth", target, md5=hashlib.md5(payload).hexdigest(), progress=False)
    assert target.read_bytes() == payload
    assert RangeHandler.ranges_seen == ["bytes=500000-"]


def test_checksum_mismatch_registers_nothing(server, tmp_path):
    root, base = server
    net = randomize(build_network("tiny"))
    torch.save({k: v for k, v in net.state_dict().items()
                if not k.startswith(DELTA_EMBEDDER_PREFIX)}, root / "net.pth")
    registry = WeightRegistry(tmp_path / "weights")
    with pytest.raises(DownloadError, match="checksum mismatch .* nothing was registered"):
        registry.download("network", "tiny", url=f"{base}/net.pth", md5="0" * 32, progress=False)
    assert registry.entries() == []
    assert list((tmp_path / "weights").rglob("*.pth*")) == []
    good_md5 = hashlib.md5((root / "net.pth").read_bytes()).hexdigest()
    entry = registry.download("network", "tiny", url=f"{base}/net.pth", md5=good_md5,
                              progress=False)
    assert entry.source_md5 == good_md5 and [e.key for e in registry.entries()] == ["network-tiny"]
    assert list((tmp_path / "weights").rglob("*.pth*")) == []  # the download itself is dropped


def test_offline_is_a_clear_message(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="seems to be offline: download w.pth elsewhere and "
                                            "run `mfmjt weights import PATH`"):
        download(f"http://127.0.0.1:{port}/w.pth", tmp_path / "w.pth", md5="0" * 32,
                 timeout=5, progress=False)
