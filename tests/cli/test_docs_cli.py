"""``mooring docs``: the documentation site served on 127.0.0.1, offline.

The real site is built once (``mkdocs build`` into a temporary folder, the build
``make docs`` runs into the package) and served by ``mooring docs`` in a subprocess,
then read in a real browser (:func:`tests._support.docs_site.check_served_site`). The
server's refusals (a missing page, a path out of the site, a busy port, no site) are
checked in-process on a small site of their own.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.cli._docs import SITE_ENV, DocsServer, packaged_site, serve_site
from mooring.errors import NotFoundError, UsageError
from tests._support.cli import mooring_in_process
from tests._support.docs_site import CHROMIUM, check_served_site
from tests._support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a file beside the site, never served"


# -- the real site, in a browser -------------------------------------------------------------
@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation as ``make docs`` builds it (not strict: the strict build is the
    docs gate's own check, and this one is about serving what was built)."""
    site = tmp_path_factory.mktemp("docs") / "_site"
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--no-strict", "--quiet", "--site-dir", site],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_MKDOCS_2_WARNING": "1"},
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


@pytest.mark.slow
def test_mooring_docs_serves_the_site_offline_in_a_browser(built_site: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("MOORING_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM} (MOORING_REQUIRE_BROWSER=1)")
        pytest.skip(f"no Chromium at {CHROMIUM}; `sudo apt-get install -y chromium`")
    server = subprocess.Popen(
        [sys.executable, "-m", "mooring", "docs", "--port", "0"],
        env={**os.environ, SITE_ENV: str(built_site)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("mooring documentation on http://127.0.0.1:"), line
        assert line.rstrip().endswith("(Ctrl+C to stop)"), line
        check_served_site(line.split()[3])
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl+C: a quiet stop
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert err == ""


# -- the server, in-process ------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site of a few pages, a folder without a page, a link out of the site, and a
    secret beside it."""
    top = tmp_path_factory.mktemp("small")
    (top / "secret.txt").write_text(SECRET)
    site = top / "site"
    (site / "how-to" / "gates").mkdir(parents=True)
    (site / "assets").mkdir()
    (site / "index.html").write_text("<h1>home</h1>")
    (site / "404.html").write_text("<h1>no such page</h1>")
    (site / "how-to" / "gates" / "index.html").write_text("<h1>gates</h1>")
    (site / "assets" / "app.js").write_text("let a = 1;")
    (site / "out.txt").symlink_to(top / "secret.txt")
    (site / "out").symlink_to(top)
    return site


@pytest.fixture(scope="module")
def served(small_site: Path) -> Iterator[DocsServer]:
    import threading

    server = serve_site(small_site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _get(server: DocsServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    """The answer to ``path`` sent exactly as written (no client normalises it)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read().decode()
    finally:
        connection.close()


def test_a_folder_url_answers_its_page_and_a_file_its_type(served: DocsServer) -> None:
    status, headers, body = _get(served, "/how-to/gates/")
    assert (status, body) == (200, "<h1>gates</h1>")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    status, headers, _ = _get(served, "/how-to/gates?q=1")
    assert (status, headers["Location"]) == (301, "/how-to/gates/?q=1")
    status, headers, body = _get(served, "/assets/app.js")
    assert (status, headers["Content-Type"], body) == (
        200,
        "text/javascript; charset=utf-8",
        "let a = 1;",
    )


def test_a_missing_page_and_a_folder_without_one_are_the_sites_404(
    served: DocsServer, small_site: Path
) -> None:
    for path in ("/nowhere/", "/assets/", "/how-to/gates/missing.html"):
        status, _, body = _get(served, path)
        assert (status, body) == (404, "<h1>no such page</h1>"), path
    status, _, body = _get(served, "/", method="POST")
    assert status == 405
    assert "read with GET" in body
    assert str(small_site.parent) not in body


_WORDS = st.sampled_from(
    ["..", "%2e%2e", "%2E%2e", ".%2e", ".", "%2f", "", "out", "out.txt", "secret.txt", "site"]
)


@settings(max_examples=150, deadline=None)
@given(words=st.lists(_WORDS, min_size=1, max_size=6))
def test_nothing_outside_the_site_is_served(served: DocsServer, words: list[str]) -> None:
    """``..``, encoded or not, and links out of the site lead nowhere: every answer is a
    page of the site or its 404, never the file beside it, never a path of the machine."""
    status, _, body = _get(served, "/" + "/".join(words))
    assert SECRET not in body
    assert "/tmp" not in body and str(Path.home()) not in body
    assert status in (200, 301, 404), status


def test_a_busy_port_is_named_with_the_option_to_change_it(
    small_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=rf"port {port} on 127\.0\.0\.1 is in use.*--port N"):
            serve_site(small_site, port)
        monkeypatch.setenv(SITE_ENV, str(small_site))
        result = mooring_in_process("docs", "--port", str(port))
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_a_built_site_the_error_says_make_docs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SITE_ENV, str(tmp_path))
    with pytest.raises(NotFoundError, match=r"not built.*run `make docs`.*pip install mooring-ml"):
        packaged_site()
    result = mooring_in_process("docs", "--port", str(free_port()))
    assert result.returncode == 2
    assert "make docs" in result.stderr
    assert str(tmp_path) not in result.stderr and "Traceback" not in result.stderr


def test_open_shows_the_address_it_prints_in_the_browser(
    small_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    opened: list[str] = []
    monkeypatch.setenv(SITE_ENV, str(small_site))

    def browse(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", browse)
    # Served until Ctrl+C: here, the interruption comes at once.
    monkeypatch.setattr(DocsServer, "serve_forever", _interrupted)
    result = mooring_in_process("docs", "--port", "0", "--open")
    assert result.returncode == 0, result.stderr
    (url,) = opened
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
    assert result.stdout == f"mooring documentation on {url} (Ctrl+C to stop)\n"
    assert result.stderr == ""


def _interrupted(self: DocsServer, poll_interval: float = 0.5) -> None:
    raise KeyboardInterrupt
