"""Peak memory of capturing one very large body (default 1 GiB), streamed end to end,
and of a page with many large requisites (default 1,000 images of 1 MB).

    .venv/bin/python bench/large_body.py [--mb N] [--images N]

Serves N MB on loopback, captures it whole with `preserve capture`, and prints
the capture's wall time and peak RSS (GNU time), then checks `get --payload`
returns the same number of bytes. Then captures the page of images the same
way. Memory must stay flat (target: under 300 MB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

CHUNK = b"0123456789abcdef" * 4096  # 64 KiB
# An image just under the size at which the crawler spools an answer to disk rather
# than hold it in memory (fetch.SPOOL_IN_MEMORY), the most each can take waiting.
IMAGE = (CHUNK * 16)[:1_000_000 - 16]


def serve(megabytes: int, images: int) -> ThreadingHTTPServer:
    size = megabytes * 1024 * 1024
    gallery = ("<html><body>" + "".join(f'<img src="/img/{number}.jpg">'
                                        for number in range(images))
               + "</body></html>").encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/big.bin":
                self.answer("application/octet-stream", *[CHUNK] * (size // len(CHUNK)))
            elif self.path == "/gallery.html":
                self.answer("text/html", gallery)
            elif self.path.startswith("/img/"):  # 1 MB, no two images alike
                self.answer("image/jpeg", self.path.encode().ljust(16), IMAGE)
            else:
                self.send_error(404)

        def answer(self, content_type: str, *body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(sum(len(part) for part in body)))
            self.end_headers()
            for part in body:
                self.wfile.write(part)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--images", type=int, default=1000,
                        help="1 MB images on the page of many requisites")
    args = parser.parse_args()
    server = serve(args.mb, args.images)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    url = f"{base}/big.bin"
    preserve = str(Path(sys.executable).parent / "preserve")
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "PRESERVE_HOME": scratch, "PRESERVE_ALLOW_PRIVATE_ADDRESSES": "1"}

        def capture(*arguments: str) -> tuple[float, float]:
            """Wall seconds and peak RSS (MB) of one capture."""
            started = time.perf_counter()
            subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f"{scratch}/time.out", preserve,
                            "capture", *arguments, "--ignore-robots", "--no-describe"],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            elapsed = time.perf_counter() - started
            return elapsed, int(Path(f"{scratch}/time.out").read_text().split()[-1]) / 1024

        elapsed, peak = capture(url, "--collection", "big",
                                "--max-resource-bytes", str((args.mb + 1) * 1024 * 1024))
        payload = subprocess.run([preserve, "get", url, "--payload", "-o", f"{scratch}/out"],
                                 env=env, check=True)
        size = Path(f"{scratch}/out").stat().st_size
        gallery_s, gallery_peak = capture(f"{base}/gallery.html", "--collection", "gallery")
    server.shutdown()
    print(f"large body: {args.mb} MB captured in {elapsed:.1f} s, peak {peak:.0f} MB "
          f"(target < 300 MB); get --payload gave {size // (1024 * 1024)} MB back"
          + ("" if payload.returncode == 0 and size == args.mb * 1024 * 1024 else " WRONG"))
    print(f"many requisites: a page with {args.images} images of 1 MB captured in "
          f"{gallery_s:.1f} s, peak {gallery_peak:.0f} MB (target < 300 MB)")


if __name__ == "__main__":
    main()
