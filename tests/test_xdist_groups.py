"""``make test`` runs with ``-n 2 --dist loadgroup``: tests that share a resource (the Ray
cluster, a trained project, a server on a fixed setup) hold one xdist group and run in
one worker, one after another. The grouping is pytest-xdist's, through the test's id;
when a pytest release changed where that id lives, groups silently stopped holding and
two Ray clusters ran at once (one's ``ray stop`` killed the other's driver). This checks
that the group still holds."""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("xdist-group-check")
def test_a_grouped_test_runs_in_its_group_under_loadgroup(request: pytest.FixtureRequest) -> None:
    # Set on xdist's workers when the run distributes by group.
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run with -n N --dist loadgroup")
    assert request.node.nodeid.endswith("@xdist-group-check"), request.node.nodeid
