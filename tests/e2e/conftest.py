"""e2e fixtures: a live cluster with Mnemo deployed, or a skip that says what is missing."""

from __future__ import annotations

import pytest
from e2e_support import Cluster, cluster_or_reason


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    api, reason = cluster_or_reason()
    if api is None:
        pytest.skip(reason)
    return Cluster(api)
