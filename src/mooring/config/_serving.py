"""``[serving]``: batching, backpressure, registry following, the prediction log, the door."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from mooring.config._base import Section

MAX_WORKERS = 256


class ServingConfig(Section):
    """``[serving]``: dynamic batching, backpressure, registry following and the prediction log."""

    # A signature call's fixed cost is most of it, so merging up to 256 rows is nearly free;
    # the timeout applies only while another batch is running or fewer requests wait than
    # the batcher recently held (serving/_batcher.py; figures in benchmarks/README.md).
    max_batch_size: int = Field(256, ge=1, le=65536, description="Rows merged into one inference.")
    batch_timeout_ms: float = Field(
        2.0,
        ge=0.0,
        le=10_000.0,
        description="Longest wait for more rows (while another batch runs, or fewer requests "
        "wait than the batcher recently held at once); a lone request never waits.",
    )
    max_queue: int = Field(
        1024, ge=1, description="Requests waiting per model version; beyond it: 503 + Retry-After."
    )
    deadline_ms: float = Field(
        5000.0,
        gt=0.0,
        description="Per-request deadline, from the arrival of its headers less the time "
        "its body took to arrive; past it: 504, work dropped if not started.",
    )
    # The door (serving/_door.py): admission, pipelining and read timeouts, checked as each
    # request's headers arrive, before its body is read.
    # Past capacity, more in flight only queues on the event loop (which saturates before
    # the model does); batches of 32 already run the model near its best
    # (benchmarks/bench_overload.py).
    max_in_flight: int = Field(
        32,
        ge=1,
        description="Inference requests admitted at once (from the end of their body); "
        "past it: 503 + Retry-After.",
    )
    max_explaining: int = Field(
        2,
        ge=1,
        le=64,
        description="Explanations (:explain) computed at once, on their own thread and "
        "outside max_in_flight; past it: 503 + Retry-After.",
    )
    # Predictions first: on a busy machine the scheduler gives the explanations' thread
    # what the predictions leave (serving/_explain.py; benchmarks/bench_explain_priority.py).
    explain_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower than predictions the explanations' thread runs on the "
        "CPU (a nice increment; 0: the same priority).",
    )
    max_explain_rows: int = Field(
        1000,
        ge=1,
        description="Rows one explanation request may hold (each costs tens of model calls); "
        "past it: 413.",
    )
    max_connections: int = Field(
        4096,
        ge=1,
        description="Open connections; past it the one quiet the longest (made or last "
        "answered) with nothing under way is closed to make room, and only when every one is "
        "in a request a new one gets 503.",
    )
    max_pipelined: int = Field(
        16,
        ge=1,
        le=1024,
        description="Ignored, kept so that older files load: a connection's pipelined "
        "requests wait as bytes (at most 64 KiB held, then its socket is not read).",
    )
    header_timeout_s: float = Field(
        10.0, gt=0.0, description="Longest time to receive a request's headers."
    )
    body_timeout_s: float = Field(
        30.0, gt=0.0, description="Longest time to receive a request's body after its headers."
    )
    # Slow bodies. A prediction holds an inference permit only once its body is complete;
    # while it arrives it is counted as receiving, which costs a connection and its
    # buffered bytes, not the model. 256 per worker: a hundred slow clients (or a burst
    # of large uploads) leave room for normal traffic, and a flood of half-sent bodies is
    # refused at its headers instead of growing the buffered bytes without bound.
    max_receiving: int = Field(
        256,
        ge=1,
        description="Prediction requests whose body is still arriving, per worker; past it "
        "the body furthest behind min_body_rate_bytes_s, if any, is cut (408), else a new "
        "one gets 503 + Retry-After and its connection is closed.",
    )
    # Memory for prediction bodies: each holds the bytes that have arrived (and a 64 KiB
    # share more while it arrives, never past its length) until its answer, and parsing a
    # JSON body costs several times its size again. What a body declares is checked
    # against the room left at its headers but not held: eight slow clients declaring
    # 4 MiB and sending a byte hold 512 KiB, not the whole budget. Without a budget 64
    # clients sending 4 MiB bodies grew a worker past 2 GiB; 32 MiB still takes 8 such
    # bodies at once, and ordinary requests of a few KiB never come near it.
    body_budget_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        description="Bytes of prediction bodies a worker holds at once (as they arrive, "
        "until answered, REST and gRPC); a new one whose length would pass it gets 503 + "
        "Retry-After, and one that passes it while arriving is read to its end unkept "
        "and answered 503. One body is always taken when none is held.",
    )
    # Large bodies cannot starve small ones: bodies of more than 64 KiB (chunked ones once
    # past it) hold at most the rest of the budget together, so a flood of 4 MiB uploads
    # leaves room for single-row requests (64 clients sending 4 MiB bodies left a normal
    # client one 200 in 18 s when they could fill the whole budget). An eighth of 32 MiB
    # holds 64 requests of 64 KiB at once, hundreds of ordinary ones.
    small_body_share: float = Field(
        0.125,
        ge=0.0,
        le=0.5,
        description="Share of body_budget_bytes that only bodies of at most 64 KiB may hold: "
        "larger bodies together hold at most the rest, and past it get 503 + Retry-After.",
    )
    # A body must arrive at this rate after a grace: a client trickling a byte now and
    # then is cut off in seconds, not after body_timeout_s. 1 KiB/s is far below any real
    # client (a 4 MiB body at this rate would take over an hour: body_timeout_s caps it).
    min_body_rate_bytes_s: float = Field(
        1024.0,
        ge=0.0,
        description="Slowest accepted body transfer after body_grace_s (0: off); a body "
        "arriving slower is answered 408 and its connection closed. When max_receiving "
        "or body_budget_bytes leave no room for a new request, the body furthest behind "
        "this rate is cut (408) first, grace or not.",
    )
    body_grace_s: float = Field(
        2.0,
        gt=0.0,
        description="Time a body has on top of its size at min_body_rate_bytes_s.",
    )
    # A refused connection is not read again for this long (the door parks it), so a
    # client that retries at once is refused once per Retry-After, not as fast as it sends.
    retry_after_s: int = Field(
        1,
        ge=1,
        le=60,
        description="The Retry-After of a 503 at the in-flight limit; the refused "
        "connection is read again only after it.",
    )
    keep_alive_s: int = Field(
        5, ge=1, description="An idle keep-alive connection is closed after this many seconds."
    )
    # gRPC (serving/_grpc/): TF Serving's PredictionService and ModelService and the Open
    # Inference Protocol's GRPCInferenceService, on the REST server's event loop, sharing
    # its batcher, routing, admission, metrics and logs.
    grpc_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of the gRPC APIs (TF Serving's and the Open Inference Protocol's); "
        "none: gRPC is off.",
    )
    grpc_max_message_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        le=2**31 - 1,
        description="Larger gRPC request messages are refused with RESOURCE_EXHAUSTED.",
    )
    # Processes (serving/_workers.py): each a whole server on the same port, so parsing and
    # answering use every core. "auto": the usable cores, capped by memory. The
    # WEB_CONCURRENCY environment variable and `mooring serve --workers` take precedence.
    workers: int | Literal["auto"] = Field(
        "auto",
        description='Server processes sharing the port ("auto": the usable cores, capped so '
        "each has 768 MiB of the available memory).",
    )
    # A model's graph can size an allocation from its input (OneHot's depth, Tile's
    # multiples), which no check of its constants sees: the process's data segment is
    # limited (RLIMIT_DATA) to what it holds with its versions loaded plus this, so such a
    # run fails its allocation (507) instead of growing the worker by gigabytes
    # (serving/_memory.py). "auto": half the memory available at start, shared by the
    # workers, at least 256 MiB.
    worker_memory_bytes: int | Literal["auto", "off"] = Field(
        "auto",
        description="Memory a server process's model runs may take past its loaded "
        'versions ("auto": half the available memory shared by the workers; "off": no '
        "ceiling); a run that would pass it is answered 507, and a worker left holding "
        "more than half of it is replaced.",
    )
    # TensorFlow already uses every core in one call, so one batch at a time is best on a
    # small machine; more can help on larger ones.
    inference_threads: int = Field(1, ge=1, le=64, description="Batches running at once.")
    poll_interval_s: float = Field(
        5.0, gt=0.0, description="How often the deployment record is read for changes."
    )
    warmup_requests: int = Field(
        8, ge=0, le=10_000, description="Requests run on a new version before it takes traffic."
    )
    log_sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of requests written to the prediction log."
    )
    # Off by default (a quiet console); `mooring serve --access-log/--no-access-log` wins.
    access_log: bool = Field(
        False, description="One JSON line per request on stderr (logger mooring.serving.access)."
    )
    log_url: str | None = Field(
        None, description="Prediction log folder; default <home>/predictions."
    )
    # 64-row requests at ~35,000 rows/s (Adult, 2 CPUs) filled 10,000 rows in 0.3 s while the
    # event loop held the interpreter; 50,000 rows of Adult are about 25 MB.
    log_buffer: int = Field(50_000, ge=1, description="Rows held for the log; beyond it rows drop.")
    # Each file costs the server's writer a fixed amount (the Parquet footer, the rename,
    # the fsync, the GIL hand-offs around them): 64-row requests logged in files of 1,000
    # rows cost about 19% of throughput, in files of 8,000 about 12% (Adult, 2 CPUs).
    log_flush_rows: int = Field(10_000, ge=1, description="Rows per Parquet file.")
    log_flush_s: float = Field(10.0, gt=0.0, description="Longest wait before writing a file.")
    # Copies run in batches of up to max_batch_size rows (serving/_shadow.py) gathered for
    # up to 100 ms: the limit holds a running batch and the next one filling, or copies
    # drop at moderate load.
    shadow_max_in_flight: int = Field(
        512,
        ge=1,
        le=1024,
        description="Shadow copies held at once (waiting or running); past it copies drop.",
    )
    shadow_timeout_ms: float = Field(
        1000.0, gt=0.0, description="A shadow copy not answered within this is abandoned."
    )
    body_limit_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Larger request bodies are refused with 413."
    )
    # The box (mooring/_sandbox.py, serving/_box.py): no-new-privileges, Landlock and seccomp
    # around each process that runs a model; best effort where the kernel lacks a part.
    sandbox: bool = Field(
        True,
        description="Box each serving worker with the operating system (Landlock, seccomp: "
        "reads beneath the store, writes to its logs, TCP on its ports only); false turns "
        "the box off, and the banner and GET /admin/status say so.",
    )
    admin_token: str | None = Field(
        None, description="Bearer token of the admin endpoints (prefer the environment variable)."
    )
    admin_token_env: str = Field(
        "MOORING_ADMIN_TOKEN", description="Environment variable holding the admin token."
    )
    admin_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="Admin tokens that authenticate a person: the sha256 (hex) of each token → "
        "who it belongs to (printf %s TOKEN | sha256sum); a request with one acts as that "
        "person on the admin API and the dashboard, and one declaring another actor is "
        "refused (403). The hashes are not secrets; the tokens stay with their people.",
    )
    # Labels drive the live-metric guardrail, so posting them takes a credential of its
    # own (not the admin token: the labelling system should not be able to deploy).
    feedback_token: str | None = Field(
        None,
        description="Bearer token of the label feedback endpoint (prefer the environment "
        "variable); without one the endpoint is off.",
    )
    feedback_token_env: str = Field(
        "MOORING_FEEDBACK_TOKEN", description="Environment variable holding the feedback token."
    )
    # The input contract at the door. Values outside the training range or categories never
    # seen in training are served by default (and counted in mooring_contract_violations_total):
    # the model handles them (clipping, the OOV bucket), the world changes faster than the
    # schema, and a server that rejects a new category turns a drift into an outage.
    contract_checks: bool = Field(
        True,
        description="Check numeric ranges and categories against the version's stored contract.",
    )
    out_of_range: Literal["serve", "reject"] = Field(
        "serve", description="A number outside the contract's [min, max]: serve and count, or 400."
    )
    unseen_category: Literal["serve", "reject"] = Field(
        "serve", description="A category outside the contract's domain: serve and count, or 400."
    )
    nan_policy: Literal["missing", "reject"] = Field(
        "missing", description="The NaN literal (and binary NaN): a missing value, or 400."
    )
    xla: Literal["auto", "off"] = Field(
        "auto",
        description="Compile a numeric version with XLA and run the batch sizes where it is "
        "faster with the same outputs (auto), or never compile (off).",
    )
    infinity_policy: Literal["reject", "missing"] = Field(
        "reject", description="Infinity / -Infinity: 400, or treated as a missing value."
    )

    @field_validator("admin_tokens")
    @classmethod
    def _token_digests(cls, value: dict[str, str]) -> dict[str, str]:
        for digest, who in value.items():
            if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                raise ValueError(
                    f"the key of {who.strip()!r} ({len(digest)} characters, not shown: it may be "
                    "a token) is not a sha256: expected 64 hex digits, the token's hash "
                    "(printf %s TOKEN | sha256sum), never the token itself"
                )
            if not who.strip() or len(who) > 100 or not who.isprintable():
                raise ValueError(
                    f"the token {digest[:12]}…: expected the short printable name of its "
                    f'person, e.g. "alice", got {who!r}'
                )
        return {digest.lower(): who.strip() for digest, who in value.items()}

    @field_validator("worker_memory_bytes", mode="before")
    @classmethod
    def _worker_memory(cls, value: Any) -> int | str:
        if value in ("auto", "off") or (type(value) is int and value >= 64 * 2**20):
            return value  # type: ignore[no-any-return]
        raise ValueError(
            'expected "auto", "off" or a number of bytes of at least 67108864 (64 MiB)'
        )

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> int | str:
        if value == "auto" or (type(value) is int and 1 <= value <= MAX_WORKERS):
            return value  # type: ignore[no-any-return]
        raise ValueError(f'expected "auto" or a number of processes from 1 to {MAX_WORKERS}')
