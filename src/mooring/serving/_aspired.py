"""The aspired versions: which loaded version serves as what, decided from the deployment.

:func:`plan` is a pure function of the deployment record, the state of each version's
harness on this server, what serves now and the versions already tried while applying
this deployment. It returns the :class:`Aspired` versions (production, canary and its
weight, shadow and its rate, and the deployed production a fallback stands in for),
and the next version to load before those are final. The manager loads that version,
asks again, and repeats until nothing is left to load; it never decides itself.

The rules, in the order :func:`plan` applies them:

* The versions the deployment names to answer (production, then canary) are loaded
  first, each once per deployment (a version that failed under an earlier deployment
  is tried again); until they are, nothing moves, so no request sees a half-applied
  deployment.
* Production is the deployed one when it is ready. Otherwise a server that serves a
  version keeps it; one that serves nothing (start-up) falls back to the newest of the
  deployment's earlier productions that loads, never trying again one that failed.
* The canary answers its weight's share only when it is ready and is not production;
  otherwise every request goes to production.
* The shadow is loaded once production and canary are in place (they move first; the
  shadow serving before keeps its copies meanwhile). It is never production or canary,
  and a shadow that does not load changes nothing else.

Examples:
    >>> from mooring.registry import Deployment
    >>> from mooring.serving._harness import HarnessState
    >>> deployment = Deployment(name="m", production=2, canary=3, canary_weight=10)
    >>> plan(deployment, {}).load
    Load(version=2, shadow=False)
    >>> ready, failed = HarnessState.READY, HarnessState.FAILED
    >>> plan(deployment, {2: ready, 3: failed}, tried={2, 3}).aspired
    Aspired(production=2, canary=None, weight=0, shadow=None, shadow_rate=0.0, fallback_for=None)
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import NamedTuple

from mooring.registry import Deployment
from mooring.serving._harness import HarnessState

__all__ = ["NOTHING", "Aspired", "Load", "Plan", "plan"]

_READY = HarnessState.READY
_UNDER_WAY = (HarnessState.LOADING, HarnessState.WARMING)


@dataclass(frozen=True, slots=True)
class Aspired:
    """Which version answers as what: the one record the router reads per request.

    Every version named here is ready. ``weight`` (0–100) is the canary's share of the
    requests that name no version; with weight 0 the canary answers only when asked for
    by version or label. ``fallback_for`` is the deployed production that could not be
    served while ``production`` answers in its place (None: production is what was
    deployed, or nothing answers).
    """

    production: int | None = None
    canary: int | None = None
    weight: int = 0
    shadow: int | None = None
    shadow_rate: float = 0.0
    fallback_for: int | None = None

    @property
    def versions(self) -> frozenset[int]:
        """The versions to keep loaded: those that answer and the shadow."""
        return frozenset(v for v in (self.production, self.canary, self.shadow) if v is not None)


#: Nothing answers (a server before its first deployment, or after it closed).
NOTHING = Aspired()


class Load(NamedTuple):
    """A version to load; ``shadow``: as the shadow (its own executor, rows not logged)."""

    version: int
    shadow: bool = False


class Plan(NamedTuple):
    """The aspired versions now, and the next version to load (None: they are final)."""

    aspired: Aspired
    load: Load | None = None


def plan(
    deployment: Deployment,
    states: Mapping[int, HarnessState],
    *,
    current: Aspired = NOTHING,
    tried: Set[int] = frozenset(),
) -> Plan:
    """The aspired versions for ``deployment`` given each version's harness state.

    ``states`` holds the versions this server has a harness for (absent: never loaded
    here, or unloaded); ``current`` is what serves now; ``tried`` the versions loaded
    (or attempted) while applying this deployment. A draining or unloaded version is
    as good as absent: it is loaded anew before it answers again.
    """

    def ready(version: int | None) -> bool:
        return version is not None and states.get(version) is _READY

    def untried(version: int | None) -> bool:
        return (
            version is not None
            and version not in tried
            and states.get(version) not in (_READY, *_UNDER_WAY)
        )

    wanted = deployment.production
    for version in (wanted, deployment.canary):
        if untried(version):
            assert version is not None
            return Plan(current, Load(version))

    serving = current.production if ready(current.production) else None
    production: int | None
    if ready(wanted):
        production = wanted
    elif serving is not None or wanted is None:
        production = serving
    else:
        production = None
        for version in reversed(deployment.previous):
            if ready(version):
                production = version
                break
            if untried(version) and states.get(version) is not HarnessState.FAILED:
                return Plan(current, Load(version))

    canary: int | None = deployment.canary
    weight = deployment.canary_weight
    if not ready(canary) or canary == production:
        canary, weight = None, 0
    fallback_for = wanted if production is not None and wanted not in (None, production) else None

    shadow = deployment.shadow
    if shadow is not None and shadow in (production, canary):
        shadow = None  # it answers requests now: no copies
    if shadow is not None and untried(shadow):
        kept = current.shadow
        if not ready(kept) or kept in (production, canary):
            kept = None
        rate = current.shadow_rate if kept is not None else 0.0
        moved = Aspired(production, canary, weight, kept, rate, fallback_for)
        return Plan(moved, Load(shadow, shadow=True))
    if ready(shadow):
        return Plan(
            Aspired(production, canary, weight, shadow, deployment.shadow_rate, fallback_for)
        )
    return Plan(Aspired(production, canary, weight, None, 0.0, fallback_for))
