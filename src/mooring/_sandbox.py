"""The box the operating system enforces around a process that runs a model.

Vetting reads a model before it runs; an op it misses would still run with the
process's rights. So every process that runs a model (a serving worker, the one-process
server, the import probe's child) boxes itself at its start, before any other thread
exists, and nothing it runs later can leave the box:

* ``prctl(PR_SET_NO_NEW_PRIVS)``: no exec gains a privilege (setuid, file capabilities).
* **Landlock** (Linux ≥ 5.13): files are read only beneath the folders :class:`Rules`
  names (the Python installation, the model store, the process's own ``/proc``, ...),
  written only beneath its writable folders (the prediction log, the metrics and run
  folder, a SQLite registry's folder); with ABI ≥ 4, TCP is bound only on the
  configured ports and connected only to the configured endpoints' ports; with ABI ≥ 6
  abstract unix sockets and signals do not reach outside the process's domain.
* **seccomp**: what Landlock cannot express. ``socket()`` is refused (``EPERM``) for UDP
  (unless an endpoint's name must be looked up), raw, packet, netlink and every other
  family but TCP and (where a PostgreSQL socket needs it) unix sockets; so are
  ``io_uring_setup`` and, on x86_64, x32 and 32-bit system calls. ``socketpair``
  (asyncio's wake-up pipe) stays open: it reaches no one.

The seccomp filter is a hand-built BPF program of about twenty instructions rather
than libseccomp through ctypes: it needs no system library (so it is on wherever the
kernel has seccomp), and the whole filter is readable here. Both parts use ``ctypes``
and the raw system calls (Landlock's 444–446 are the same on x86_64 and aarch64); no
dependency. Elsewhere (another OS, another architecture, an old kernel, a container
that forbids the calls) the box is off, or partly off, and :func:`current` says why, for
``mooring status``, ``GET /admin/status`` and the serve banner.

Landlock (before ABI 8) restricts the calling thread and the threads started after it,
so :func:`enter` refuses to box a process that already runs another Python thread (one
that could call a model outside the box) and says so. Native threads that libraries
start at their import (OpenBLAS's pool, jemalloc's purger in a one-process server; a
forked worker has none) run no model code: they stay outside Landlock, seccomp covers
them too, and the box counts them (``outside``). The test suite and the ``mooring`` commands
that do not run a model are never boxed: only those processes call :func:`enter`.

Examples:
    >>> rules = Rules(read=(Path("/srv/store"),), write=(Path("/srv/log"),), bind=(8501,))
    >>> enter(rules).on  # doctest: +SKIP
    True
    >>> describe(Box(on=False, why="[serving] sandbox = false"))
    'box off: [serving] sandbox = false'
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import os
import platform
import shutil
import struct
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "Box",
    "Rules",
    "abi_version",
    "current",
    "describe",
    "endpoint_ports",
    "enter",
    "system_reads",
]

# -- Landlock's interface (include/uapi/linux/landlock.h) ---------------------------
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_REMOVE_DIR = 1 << 4
_FS_REMOVE_FILE = 1 << 5
_FS_MAKE_CHAR = 1 << 6
_FS_MAKE_DIR = 1 << 7
_FS_MAKE_REG = 1 << 8
_FS_MAKE_SOCK = 1 << 9
_FS_MAKE_FIFO = 1 << 10
_FS_MAKE_BLOCK = 1 << 11
_FS_MAKE_SYM = 1 << 12
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1

_FS_ABI1 = (1 << 13) - 1
_FILE_ONLY = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_WRITE = (
    _READ
    | _FS_WRITE_FILE
    | _FS_REMOVE_DIR
    | _FS_REMOVE_FILE
    | _FS_MAKE_DIR
    | _FS_MAKE_REG
    | _FS_REFER
    | _FS_TRUNCATE
)

# -- seccomp (include/uapi/linux/seccomp.h, filter.h, audit.h) ------------------------
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_RET_ALLOW = 0x7FFF0000
_RET_EPERM = 0x00050000 | errno.EPERM
_LD_W_ABS, _JEQ_K, _JGE_K, _AND_K, _RET_K = 0x20, 0x15, 0x35, 0x54, 0x06
#: machine → (audit arch, seccomp, socket, io_uring_setup, refuse numbers from (x32))
_ARCH = {
    "x86_64": (0xC000003E, 317, 41, 425, 0x40000000),
    "aarch64": (0xC00000B7, 277, 198, 425, None),
}
_AF_UNIX, _AF_INET, _AF_INET6 = 1, 2, 10
_SOCK_STREAM, _SOCK_DGRAM = 1, 2
_IPPROTO_TCP, _IPPROTO_UDP = 6, 17

#: Files and folders beneath which every boxed process may read: the C libraries and
#: TensorFlow's shared objects, name lookups' files, time zones, certificates, this
#: process's ``/proc`` entry and what CPU and cgroup facts the runtimes read at start.
_SYSTEM_READ = (
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib",
    "/lib64",
    "/usr/share/zoneinfo",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/pki",
    "/usr/share/ca-certificates",
    "/proc/self",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
    "/sys/kernel/mm/transparent_hugepage",
    "/proc/sys/vm/overcommit_memory",
    "/dev/urandom",
    "/dev/random",
)
#: The names of the import paths a Python installation sets (and their .zip files).
_IMPORT_FOLDERS = frozenset({"site-packages", "dist-packages", "lib-dynload"})
#: Devices every boxed process may write (TensorFlow's and mooring's quiet logs).
_SYSTEM_WRITE = ("/dev/null",)


@dataclass(frozen=True)
class Rules:
    """What a boxed process may reach: files and folders it reads (``read``) and writes
    (``write``, with read) beneath, TCP ports it binds and connects to, whether it may
    open unix sockets (``unix``: a PostgreSQL registry on a socket path) and UDP
    sockets (``udp``: an endpoint named by a host name, looked up through DNS), and its
    temporary folder (``temp``; None: a new one, removed at exit), which becomes
    ``TMPDIR``: TensorFlow's import asks for one, and the box hides the machine's.

    >>> Rules(bind=(8501,)).bind
    (8501,)
    """

    read: tuple[Path, ...] = ()
    write: tuple[Path, ...] = ()
    bind: tuple[int, ...] = ()
    connect: tuple[int, ...] = ()
    unix: bool = False
    udp: bool = False
    temp: Path | None = None


@dataclass(frozen=True)
class Box:
    """The box this process runs in: ``on`` (Landlock's files at least), the ABI, which
    parts are off and why (``off``), or, when the whole box is off, ``why``."""

    on: bool
    why: str = ""
    abi: int = 0
    bind: tuple[int, ...] = ()
    connect: tuple[int, ...] = ()
    off: tuple[str, ...] = field(default=())
    outside: int = 0  # native threads from before the box, outside Landlock

    def to_dict(self) -> dict[str, object]:
        """For ``GET /admin/status``: ``{"on": ..., "line": ...}`` and the details."""
        return {
            "on": self.on,
            "line": describe(self),
            "landlock_abi": self.abi,
            "bind_tcp": list(self.bind),
            "connect_tcp": list(self.connect),
            "off": list(self.off) if self.on else [self.why],
            "threads_outside_landlock": self.outside,
        }


_current: Box | None = None


def current() -> Box | None:
    """This process's box, once :func:`enter` ran (None: this process is not one that
    runs a model, or has not started it)."""
    return _current


def describe(box: Box) -> str:
    """One line for people: ``box on: ...`` with the parts that are off, or ``box off: why``.

    >>> describe(Box(on=True, abi=7, bind=(8501,), off=()))  # doctest: +NORMALIZE_WHITESPACE
    'box on: Landlock ABI 7 (files; TCP bind 8501, connect none; scoped), seccomp,
     no new privileges'
    """
    if not box.on:
        return f"box off: {box.why}"
    net = "network rules off" if box.abi < 4 else _ports(box.bind, box.connect)
    scoped = "; scoped" if box.abi >= 6 else ""
    parts = [f"Landlock ABI {box.abi} (files; {net}{scoped})"]
    if not any(part.startswith("seccomp") for part in box.off):
        parts.append("seccomp")
    parts.append("no new privileges")
    line = "box on: " + ", ".join(parts)
    if box.outside:
        line += f"; {box.outside} library thread(s) from before it outside Landlock"
    return line + (f"; off: {'; '.join(box.off)}" if box.off else "")


def _ports(bind: tuple[int, ...], connect: tuple[int, ...]) -> str:
    def listed(ports: tuple[int, ...]) -> str:
        return ", ".join(str(port) for port in ports) or "none"

    return f"TCP bind {listed(bind)}, connect {listed(connect)}"


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 without Landlock (not Linux, too old a
    kernel, Landlock not in the boot's LSM list, or the call refused)."""
    if sys.platform != "linux" or platform.machine() not in _ARCH:
        return 0
    try:
        version = _libc().syscall(
            _CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION
        )
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def why_off() -> str | None:
    """Why this machine cannot box a process (None: it can), for ``mooring status``."""
    if sys.platform != "linux":
        return f"Landlock is Linux's; this system is {sys.platform}"
    if platform.machine() not in _ARCH:
        return f"no Landlock system calls known for {platform.machine()} (x86_64, aarch64)"
    if abi_version() < 1:
        return "the kernel offers no Landlock (Linux ≥ 5.13 with landlock in its lsm= list)"
    return None


def system_reads() -> list[Path]:
    """What any boxed Python process reads: the interpreter's prefixes, every import
    path (site-packages, an editable source tree) and :data:`_SYSTEM_READ`."""
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, *_SYSTEM_READ]
    found.append(os.path.dirname(os.path.realpath(sys.executable)))
    # mooring's own folder (an editable install's source tree) and the import paths the
    # installation or the user set; not a script's folder or the working folder, which
    # Python puts first on the path and which may hold anything.
    found.append(str(Path(__file__).resolve().parent.parent))
    # Keras's settings (keras.json), read when TensorFlow or Keras is imported.
    found.append(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"))
    # Every import path but the first, which Python sets to the script's or the working
    # folder: site-packages, a .pth file's folders, PYTHONPATH's; and where an import
    # folder's entries are links (an installation made of links), what they link to.
    chosen = set(filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    first = {"", os.getcwd()}
    if sys.argv and sys.argv[0] and sys.argv[0] != "-c":
        first.add(os.path.dirname(os.path.abspath(sys.argv[0])))
    for entry in sys.path:
        if entry in first and entry not in chosen:
            continue
        if entry in chosen or Path(entry).name in _IMPORT_FOLDERS or os.path.isdir(entry):
            found.append(entry)
            found += _link_targets(entry)
        elif entry.endswith(".zip"):
            found.append(entry)
    return [Path(entry) for entry in found]


def _link_targets(folder: str) -> list[str]:
    """Where the links directly inside ``folder`` point: Landlock checks the file a link
    resolves to, not the link."""
    try:
        with os.scandir(folder) as entries:
            links = [e.path for e in entries if e.is_symlink()]
    except OSError:
        return []
    return [os.path.realpath(link) for link in links]


def endpoint_ports(urls: Iterable[str | None]) -> tuple[tuple[int, ...], bool, bool]:
    """The TCP ports ``urls`` reach (``https://h/x`` → 443, ``postgresql://h/db`` →
    5432), whether one names a host to look up (UDP for DNS), and whether one is a unix
    socket (a PostgreSQL ``host=/run/postgresql``). Local paths and ``sqlite:`` reach none.

    >>> endpoint_ports(["https://hooks.example.com/x", "sqlite:////srv/r.db", None])
    ((443,), True, False)
    >>> endpoint_ports(["http://127.0.0.1:4318"])
    ((4318,), False, False)
    """
    from urllib.parse import parse_qs, urlsplit

    defaults = {"http": 80, "https": 443, "s3": 443, "gs": 443, "gcs": 443, "az": 443}
    defaults |= {"abfs": 443, "postgresql": 5432, "postgres": 5432, "mysql": 3306}
    ports: set[int] = set()
    lookup = unix = False
    for url in urls:
        if not url or "://" not in url:
            continue
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0].lower()
        if scheme in ("sqlite", "file", "memory", "local"):
            continue
        host = parts.hostname or ""
        if not host:
            socket_dir = parse_qs(parts.query).get("host", [""])[0]
            unix = unix or socket_dir.startswith("/") or scheme.startswith("postgres")
            continue
        try:
            port = parts.port
        except ValueError:
            port = None
        ports.add(port or defaults.get(scheme, 443))
        lookup = lookup or not _literal(host)
    return tuple(sorted(ports)), lookup, unix


def _literal(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True  # /etc/hosts, no DNS
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def enter(rules: Rules) -> Box:
    """Box this process for good with ``rules`` (plus :func:`system_reads`); the box.

    Call it at the start of a process that will run a model, before it starts a thread.
    Where the kernel lacks a part the rest still holds and the box says which part is
    off; where it lacks Landlock, or another thread already runs, nothing is applied
    and the box says why. Never raises for what the machine lacks.
    """
    global _current
    box = _enter(rules)
    _current = box
    return box


def off(why: str) -> Box:
    """Record that this process runs unboxed on purpose (``[serving] sandbox = false``)."""
    global _current
    _current = Box(on=False, why=why)
    return _current


def _enter(rules: Rules) -> Box:
    reason = why_off()
    if reason is not None:
        return Box(on=False, why=reason)
    if threading.active_count() > 1:
        names = ", ".join(sorted(t.name for t in threading.enumerate()))
        return Box(on=False, why=f"Python threads ran before the box could hold them ({names})")
    outside = _threads() - 1
    temp, holder = _temp_folder(rules.temp)
    rules = replace(rules, write=(*rules.write, temp))
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return Box(on=False, why=f"prctl(PR_SET_NO_NEW_PRIVS): {_error()}")
    abi = abi_version()
    offs: list[str] = []
    seccomp = _seccomp(libc, rules)
    if seccomp is not None:
        offs.append(f"seccomp ({seccomp})")
    if abi < 4:
        offs.append(f"TCP bind and connect rules (Landlock ABI {abi} < 4)")
    if abi < 6:
        offs.append(f"abstract unix socket and signal scoping (Landlock ABI {abi} < 6)")
    failed = _landlock(libc, abi, rules, holder)
    if failed is not None:
        return Box(on=False, why=failed, abi=abi)
    return Box(
        on=True, abi=abi, bind=rules.bind, connect=rules.connect, off=tuple(offs), outside=outside
    )


def _temp_folder(given: Path | None) -> tuple[Path, Path | None]:
    """The boxed process's own temporary folder, as ``TMPDIR`` and ``tempfile``'s, and
    the folder holding it when it is made here (``mooring-box-<uid>`` in the machine's
    temporary folder), where the box may remove it at exit and nothing else."""
    holder = None
    if given is None:
        holder = Path(tempfile.gettempdir()) / f"mooring-box-{os.getuid()}"
        holder.mkdir(mode=0o700, exist_ok=True)
        given = Path(tempfile.mkdtemp(dir=holder))
        atexit.register(shutil.rmtree, given, ignore_errors=True)
    given.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(given)
    tempfile.tempdir = str(given)
    return given, holder


def _error() -> str:
    number = ctypes.get_errno()
    return f"{errno.errorcode.get(number, number)} ({os.strerror(number)})"


def _handled_fs(abi: int) -> int:
    handled = _FS_ABI1
    if abi >= 2:
        handled |= _FS_REFER
    if abi >= 3:
        handled |= _FS_TRUNCATE
    if abi >= 5:
        handled |= _FS_IOCTL_DEV
    return handled


def _landlock(libc: ctypes.CDLL, abi: int, rules: Rules, holder: Path | None) -> str | None:
    """Landlock's ruleset for ``rules``, restricting this thread; an error, or None."""
    fs = _handled_fs(abi)
    if abi >= 6:
        scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
        attr = struct.pack("=QQQ", fs, _NET_BIND_TCP | _NET_CONNECT_TCP, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", fs, _NET_BIND_TCP | _NET_CONNECT_TCP)
    else:
        attr = struct.pack("=Q", fs)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(_CREATE_RULESET, buffer, ctypes.c_size_t(len(attr)), 0)
    if ruleset < 0:
        return f"landlock_create_ruleset: {_error()}"
    try:
        grants = [(path, _READ) for path in [*system_reads(), *rules.read]]
        grants += [(Path(path), _WRITE | _FS_IOCTL_DEV) for path in _SYSTEM_WRITE]
        # The process's own threads' names (comm), which runtimes set by writing there.
        grants.append((Path("/proc/self/task"), _READ | _FS_WRITE_FILE))
        grants += [(path, _WRITE) for path in rules.write]
        if holder is not None:  # the temporary folder removed at exit, not its siblings' files
            grants.append((holder, _FS_REMOVE_DIR))
        for path, access in grants:
            problem = _add_path(libc, ruleset, path, access & fs)
            if problem is not None:
                return problem
        if abi >= 4:
            for port, access in [
                *((port, _NET_BIND_TCP) for port in sorted(set(rules.bind))),
                *((port, _NET_CONNECT_TCP) for port in sorted(set(rules.connect))),
            ]:
                rule = ctypes.create_string_buffer(struct.pack("=QQ", access, port), 16)
                if libc.syscall(_ADD_RULE, ruleset, _RULE_NET_PORT, rule, 0) != 0:
                    return f"landlock_add_rule (TCP port {port}): {_error()}"
        if libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            return f"landlock_restrict_self: {_error()}"
    finally:
        os.close(ruleset)
    return None


def _add_path(libc: ctypes.CDLL, ruleset: int, path: Path, access: int) -> str | None:
    """Allow ``access`` beneath ``path``; a path that does not exist is skipped (a
    folder made later, such as a log folder, must exist before :func:`enter`)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            access &= _FILE_ONLY
        rule = ctypes.create_string_buffer(struct.pack("=Qi", access, fd), 12)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, 0) != 0:
            return f"landlock_add_rule ({path.name or path}): {_error()}"
    finally:
        os.close(fd)
    return None


def _filter(machine: str, rules: Rules) -> list[tuple[int, int, int, int]]:
    """The seccomp program (BPF: code, jump if true, jump if false, constant) for
    ``machine``: sockets of TCP only (and UDP, unix where ``rules`` need them), no
    io_uring, no other system call ABI; everything else allowed."""
    arch, _, socket_nr, io_uring_nr, x32 = _ARCH[machine]
    # Labels are resolved by _assemble: ("jump", code, k, true_label, false_label).
    program: list[tuple[object, ...]] = [
        ("op", _LD_W_ABS, 4),  # arch
        ("jump", _JEQ_K, arch, None, "deny"),
        ("op", _LD_W_ABS, 0),  # nr
    ]
    if x32 is not None:
        program.append(("jump", _JGE_K, x32, "deny", None))
    program += [
        ("jump", _JEQ_K, socket_nr, "socket", None),
        ("jump", _JEQ_K, io_uring_nr, "deny", "allow"),
        ("label", "socket"),
        ("op", _LD_W_ABS, 16),  # args[0]: the family
        ("jump", _JEQ_K, _AF_INET, "inet", None),
        ("jump", _JEQ_K, _AF_INET6, "inet", None),
        ("jump", _JEQ_K, _AF_UNIX, "allow" if rules.unix else "deny", "deny"),
        ("label", "inet"),
        ("op", _LD_W_ABS, 32),  # args[2]: the protocol
        ("jump", _JEQ_K, 0, "type", None),
        ("jump", _JEQ_K, _IPPROTO_TCP, "type", None),
        ("jump", _JEQ_K, _IPPROTO_UDP, "type" if rules.udp else "deny", "deny"),
        ("label", "type"),
        ("op", _LD_W_ABS, 24),  # args[1]: the type, less SOCK_NONBLOCK and SOCK_CLOEXEC
        ("op", _AND_K, 0xF),
        ("jump", _JEQ_K, _SOCK_STREAM, "allow", None),
        ("jump", _JEQ_K, _SOCK_DGRAM, "allow" if rules.udp else "deny", "deny"),
        ("label", "allow"),
        ("ret", _RET_K, _RET_ALLOW),
        ("label", "deny"),
        ("ret", _RET_K, _RET_EPERM),
    ]
    return _assemble(program)


def _assemble(program: list[tuple[object, ...]]) -> list[tuple[int, int, int, int]]:
    labels: dict[object, int] = {}
    index = 0
    for item in program:
        if item[0] == "label":
            labels[item[1]] = index
        else:
            index += 1
    out: list[tuple[int, int, int, int]] = []
    for item in program:
        if item[0] == "label":
            continue
        at = len(out)
        if item[0] == "jump":
            _, code, k, true, false = item
            jt = 0 if true is None else labels[true] - at - 1
            jf = 0 if false is None else labels[false] - at - 1
            out.append((int(code), jt, jf, int(k)))  # type: ignore[call-overload]
        else:
            out.append((int(item[1]), 0, 0, int(item[2])))  # type: ignore[call-overload]
    return out


def _seccomp(libc: ctypes.CDLL, rules: Rules) -> str | None:
    """Install the filter on every thread of the process; why it is off, or None."""
    machine = platform.machine()
    _, seccomp_nr, *_ = _ARCH[machine]
    program = _filter(machine, rules)
    raw = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    filters = ctypes.create_string_buffer(raw, len(raw))
    prog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(filters))
    fprog = ctypes.create_string_buffer(prog, len(prog))
    flags = _SECCOMP_FILTER_FLAG_TSYNC
    if libc.syscall(seccomp_nr, _SECCOMP_SET_MODE_FILTER, flags, fprog) != 0:
        return f"seccomp(SECCOMP_SET_MODE_FILTER): {_error()}"
    return None
