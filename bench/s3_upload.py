"""Upload with verification against plain boto3 ``upload_file``, to the same S3 endpoint.

Our put sends the SHA-256 (per part), keeps it in metadata, refuses to
overwrite (If-None-Match) and verifies the copy (the server's MD5 ETag against
ours, or a read-back) before it counts; boto3's ``upload_file`` (its default
transfer settings) only uploads. Both clients exist before the clock starts. Both go to
moto's server on loopback, started here, unless ``--endpoint`` names another
(credentials from the AWS_* variables then):

    .venv/bin/python bench/s3_upload.py [--mb 256] [--endpoint URL]

Each kind of upload runs ``--rounds`` times, alternating; the medians are
printed as MiB/s, with the ratio of ours to boto3's (target at least 0.8).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3

from preserve.config import Location
from preserve.storage.s3 import S3Store


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H",
                               "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto_server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="size of the object (MiB)")
    parser.add_argument("--endpoint", help="an S3 endpoint (default: moto's server, started here)")
    parser.add_argument("--rounds", type=int, default=3, help="uploads of each kind; medians")
    args = parser.parse_args()
    server = None
    if args.endpoint:
        endpoint = args.endpoint
    else:
        server, endpoint = start_moto()
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_DEFAULT_REGION="us-east-1")
    bucket = f"preserve-bench-{uuid.uuid4().hex[:8]}"
    client = boto3.session.Session().client("s3", endpoint_url=endpoint,
                                            region_name=os.environ.get("AWS_DEFAULT_REGION",
                                                                       "us-east-1"))
    try:
        client.create_bucket(Bucket=bucket)
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "object.warc.gz"
            block = os.urandom(1024 * 1024)
            digest = hashlib.sha256()
            with path.open("wb") as out:
                for number in range(args.mb):
                    chunk = block[number:] + block[:number]  # no two MiB alike
                    out.write(chunk)
                    digest.update(chunk)
            size = path.stat().st_size / 1024 / 1024
            store = S3Store(Location("bench", "s3", bucket=bucket, endpoint_url=endpoint,
                                     addressing_style="path"))
            store.head("ours/warm-up")  # its client made, as upload_file's was
            plain_times, our_times = [], []
            for round_ in range(args.rounds):  # alternating, so drift hits both alike
                for who in (("plain", "ours") if round_ % 2 == 0 else ("ours", "plain")):
                    key = f"{who}/{round_}.warc.gz"
                    started = time.perf_counter()
                    if who == "plain":
                        client.upload_file(str(path), bucket, key)
                        plain_times.append(time.perf_counter() - started)
                    else:
                        with path.open("rb") as stream:
                            store.put(key, stream, digest.hexdigest())
                        our_times.append(time.perf_counter() - started)
                    client.delete_object(Bucket=bucket, Key=key)
            plain, ours = statistics.median(plain_times), statistics.median(our_times)
    finally:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", ()):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)
        if server is not None:
            server.terminate()
            server.wait()
    where = args.endpoint or "moto's server on loopback"
    print(f"s3 upload: {size:.0f} MiB object to {where}, median of {args.rounds} each")
    print(f"  preserve put (checksums, verified)  {ours:6.2f} s  {size / ours:7.1f} MiB/s")
    print(f"  boto3 upload_file (upload only)     {plain:6.2f} s  {size / plain:7.1f} MiB/s")
    print(f"  ratio (our MiB/s / boto3's): {plain / ours:.2f}x")


if __name__ == "__main__":
    main()
