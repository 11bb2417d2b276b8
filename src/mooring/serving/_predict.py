"""The prediction path every protocol shares: route, contract, batcher, log, metrics.

A protocol front end (TF Serving's REST API, the Open Inference Protocol, their gRPC
services) parses its request into typed columns and hands them to one
:class:`Predictor` with a :class:`Call`: the request's id (always the server's own;
the X-Request-Id a client sent is kept beside it as ``client_request_id``), arrival,
deadline and routing key. The predictor picks the version (pinned, labelled, or the
canary split by key), checks the version's contract, decides whether the request is
logged, runs the rows through the version's batcher (which logs each batch's rows in one
append), hands a sampled copy to the shadow version without waiting for it
(:mod:`mooring.serving._shadow`) and, once the front end has its answer, counts the
request in the metrics and the access log. So every protocol routes, refuses, logs and
counts the same way, and a change to any of those happens here once.

Examples:
    >>> call = Call(protocol="tfserving", request_id="r1", arrived=0.0, deadline=5.0)
    >>> call.model, call.version
    ('', '')
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from mooring._tracing import RequestTrace
from mooring.formats._columns import InputPolicy, refuse_missing
from mooring.serving._contract import Violation, violating_rows
from mooring.serving._errors import DeadlineExceededError, InvalidRequestError
from mooring.serving._explain import Explaining
from mooring.serving._loaded import ServedModel
from mooring.serving._log import LogTicket
from mooring.serving._models import ModelManager, Slot
from mooring.serving._shadow import ShadowCopier
from mooring.serving._state import ServerState

__all__ = ["Call", "Predictor"]

access_log = logging.getLogger("mooring.serving.access")


@dataclass(kw_only=True)
class Call:
    """One request on its way through the server, whatever its protocol."""

    protocol: str
    request_id: str  # the server's own (X-Request-Id answered, logged, what labels join on)
    arrived: float  # time.monotonic() when its headers (or its gRPC call) arrived
    deadline: float = float("inf")  # time.monotonic() past which it is answered 504
    key: str | None = None  # x-request-key: the same key always lands on the same version
    model: str = ""
    version: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # to send back (X-Model-Version)
    trace: RequestTrace | None = None  # a prediction's span, when tracing is on
    routed: bool = False  # the version was chosen by the canary split, not asked for
    # The X-Request-Id the client sent, when a plain token: echoed as X-Client-Request-Id
    # and logged beside request_id, never used as the request's id.
    client_request_id: str | None = None
    # Answered 504 before it reached the model: shed load, counted under version "-".
    shed: bool = False
    # An explanation (:explain), counted apart from the predictions.
    explaining: bool = False


class Predictor:
    """Route, check, predict, log and count one :class:`Call` (one per server)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        cfg = state.serving
        self.policy = InputPolicy(nan=cfg.nan_policy, infinity=cfg.infinity_policy)
        self.deadline_s = cfg.deadline_ms / 1000.0
        self.shadow = ShadowCopier(state)
        #: Explanations: their own limit and thread, outside the inference permits.
        self.explaining = Explaining(
            limit=cfg.max_explaining,
            retry_after=cfg.retry_after_s,
            max_rows=cfg.max_explain_rows,
            nice=cfg.explain_nice,
            memory=state.memory,
        )
        # A worker of `mooring serve --workers N` says which one answered in its access log.
        self.worker = state.worker.index if state.worker is not None else None

    def policy_for(self, model: ServedModel) -> InputPolicy:
        """The door's policy for ``model``: the server's, also taking (and ignoring) the
        columns its contract knows besides the inputs. Derived once per loaded version."""
        policy = model.policy
        if policy is None:
            known = model.contract.known if model.contract is not None else frozenset()
            policy = replace(self.policy, ignored=known) if known else self.policy
            model.policy = policy
        return policy

    def route(
        self, call: Call, manager: ModelManager, *, version: int | None, label: str | None
    ) -> Slot:
        """The slot (version) that answers: pinned, labelled, or the canary split by key."""
        slot = manager.route(version=version, label=label, key=call.key)
        call.version = str(slot.version)
        call.routed = version is None and label is None
        call.headers["X-Model-Version"] = call.version
        return slot

    async def serve(
        self,
        call: Call,
        manager: ModelManager,
        slot: Slot,
        columns: dict[str, Any],
        rows: int,
    ) -> dict[str, Any]:
        """Check the contract, predict through the batcher (which logs the batch); the outputs."""
        trace = call.trace
        if trace is not None:
            trace.served_by(manager.name, slot.version)
        if slot.model.refuses_missing:  # an imported model: NaN would be read as a number
            refuse_missing(
                columns,
                slot.model.refuses_missing,
                f"model '{manager.name}' version {slot.version}",
            )
        contract = slot.model.contract
        if contract is not None and contract.booleans:
            contract.spell_booleans(columns)
        violations = None
        if contract is not None and self.state.serving.contract_checks:
            if trace is not None:
                trace.phase("contract")
            violations = contract.check(columns)
            if violations:
                self.violations(manager.name, slot.version, violations, contract.critical)
        shadow = self.shadow.pick(manager, slot) if manager.shadow is not None else None
        plog = self.state.prediction_log
        ticket = None
        if plog is not None and plog.wants(manager.name, sampled=shadow is not None):
            ticket = LogTicket(call.request_id, call.client_request_id)
            if violations:  # served although outside the contract: the log says which
                ticket.violations = violating_rows(violations, rows)
        if trace is not None:
            trace.phase("queue")
        outputs = await slot.predict(columns, rows, self.remaining(call), trace, ticket)
        if shadow is not None:
            self.shadow.hand_over(
                manager,
                slot,
                shadow,
                call.request_id,
                columns,
                rows,
                logged=ticket is not None and ticket.buffered,
                client_request_id=call.client_request_id,
            )
        if trace is not None:
            trace.phase("format")
        return outputs

    def remaining(self, call: Call) -> float:
        """Seconds left before the request's deadline; 504 when none are."""
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceededError(
                f"the deadline of {self.state.serving.deadline_ms:.0f} ms passed before the "
                "request reached the model; the server is busy: retry later, send smaller "
                "batches or raise [serving] deadline_ms",
                shed=True,
            )
        return remaining

    def violations(
        self,
        model: str,
        version: int,
        violations: list[Violation],
        critical: frozenset[str] = frozenset(),
    ) -> None:
        """Count every violation; refuse the request when the policy of its kind says so,
        or the input's column is critical in the contract."""
        cfg = self.state.serving
        counter = self.state.metrics.contract_violations
        refused = None
        for v in violations:
            counter.labels(model, str(version), v.input, v.kind).inc(v.count)
            setting = "out_of_range" if v.kind == "out_of_range" else "unseen_category"
            if refused is None and v.input in critical:
                refused = v.message(setting, critical=True)
            elif refused is None and getattr(cfg, setting) == "reject":
                refused = v.message(setting)
        if refused is not None:
            raise InvalidRequestError(refused)

    def finish(
        self, call: Call, status: int, *, method: str, path: str, client: str | None
    ) -> None:
        """Count an answered request (``status`` as HTTP) in the metrics and the access log."""
        elapsed = time.monotonic() - call.arrived
        if call.trace is not None:
            call.trace.finish(status)
        if call.explaining:
            metrics = self.state.metrics
            labels = (call.model or "-", call.version or "-", call.protocol, str(status))
            metrics.explanations.labels(*labels).inc()
        elif call.model:
            version = "-" if call.shed else call.version or "-"
            self.state.metrics.observe_request(call.model, version, call.protocol, status, elapsed)
            if call.routed and 400 <= status < 500 and status not in (429, 499):
                self.state.metrics.routed_client_errors.labels(call.model, call.version).inc()
        if access_log.isEnabledFor(logging.INFO):
            line = {
                "request_id": call.request_id,
                "client_request_id": call.client_request_id,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "model": call.model or None,
                "version": call.version or None,
                "client": client,
                # With tracing on: the trace to open from this line.
                "trace_id": call.trace.trace_id if call.trace is not None else None,
            }
            if self.worker is not None:
                line["worker"] = self.worker
            access_log.info(orjson.dumps(line).decode())
