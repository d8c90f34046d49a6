"""Object-store requests per byte read: a stream read in small pieces (warcio reads ~16 KB at a time) must not
become one ranged GET per piece, which at crawl scale is billions of GETs per snapshot."""
import os

import pytest

from pipeline.core.config import load_config
from pipeline.core.storage import Storage
from tests.s3server import FaultyProxy


@pytest.fixture()
def proxy(s3_server):
    p = FaultyProxy(s3_server.endpoint).start()
    yield p
    p.stop()


def test_a_stream_read_in_16_kb_pieces_costs_one_get_per_8_mb(s3_server, proxy):
    bucket = s3_server.make_bucket("reqs")
    data = os.urandom(3 << 20)
    s3_server.client().put_object(Bucket="reqs", Key="in/big.bin", Body=data)
    store = Storage(load_config(None, [f"storage.s3_endpoint={proxy.endpoint}"]).storage)
    got = bytearray()
    with store.open_read(f"{bucket}/in/big.bin") as f:
        while piece := f.read(16 << 10):
            got += piece
    assert bytes(got) == data
    assert proxy.served["/reqs/in/big.bin"] <= 2, proxy.served
