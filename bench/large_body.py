"""Peak memory of capturing one very large body (default 1 GiB), streamed end to end.

    .venv/bin/python bench/large_body.py [--mb N]

Serves N MB on loopback, captures it whole with `preserve capture`, and prints
the capture's wall time and peak RSS (GNU time), then checks `get --payload`
returns the same number of bytes. Memory must stay flat (target: under 300 MB).
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


def serve(megabytes: int) -> ThreadingHTTPServer:
    size = megabytes * 1024 * 1024

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/big.bin":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for _ in range(size // len(CHUNK)):
                self.wfile.write(CHUNK)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    args = parser.parse_args()
    server = serve(args.mb)
    url = f"http://127.0.0.1:{server.server_address[1]}/big.bin"
    preserve = str(Path(sys.executable).parent / "preserve")
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "PRESERVE_HOME": scratch, "PRESERVE_ALLOW_PRIVATE_ADDRESSES": "1"}
        started = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f"{scratch}/time.out", preserve,
                        "capture", url, "--collection", "big", "--ignore-robots",
                        "--max-resource-bytes", str((args.mb + 1) * 1024 * 1024)],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        peak = int(Path(f"{scratch}/time.out").read_text().split()[-1]) / 1024
        payload = subprocess.run([preserve, "get", url, "--payload", "-o", f"{scratch}/out"],
                                 env=env, check=True)
        size = Path(f"{scratch}/out").stat().st_size
    server.shutdown()
    print(f"large body: {args.mb} MB captured in {elapsed:.1f} s, peak {peak:.0f} MB "
          f"(target < 300 MB); get --payload gave {size // (1024 * 1024)} MB back"
          + ("" if payload.returncode == 0 and size == args.mb * 1024 * 1024 else " WRONG"))


if __name__ == "__main__":
    main()
