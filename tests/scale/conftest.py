"""The scale-out tests' Ray cluster: started once per test process, stopped after the
last test of this package (the tests share one xdist group, so they run back to back):
an idle cluster costs the rest of the suite CPU time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._support.ray_cluster import ray_available, ray_cluster


@pytest.fixture(scope="package")
def ray_address() -> Iterator[str]:
    if not ray_available():
        pytest.skip("Ray is not installed (pip install 'mooring-ml[ray]')")
    with ray_cluster(nodes=2) as address:
        yield address
