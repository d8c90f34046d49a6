"""moto's real S3 HTTP endpoint on 127.0.0.1, for the tests (conftest's ``s3_server``) and bench/soak.py."""
from __future__ import annotations

import socket
import time


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, timeout: float, every: float = 0.2) -> bool:
    """True once something listens on 127.0.0.1:``port``; False after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if port_open(port):
            return True
        time.sleep(every)
    return False


class S3Server:
    """moto's ThreadedMotoServer in this process; stop() and start() keep the buckets (an outage, for fault tests)."""

    def __init__(self, access_key: str = "testing", secret_key: str = "testing") -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key, self.secret_key = access_key, secret_key
        self._server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def up(self) -> bool:
        return self._server is not None

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"
