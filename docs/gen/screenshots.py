"""The dashboard's pictures in docs/assets/screenshots/, taken from what ``mooring demo``
leaves: its project is served, sent traffic and checked for drift, and Debian's Chromium
(through Playwright) photographs the models, model, drift and live pages.

Run by ``make screenshots``: ``python docs/gen/screenshots.py [--work build/screenshots]``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "assets" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
NAME = "income"
NUMERIC = {"age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"}


def mooring(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "mooring", *args], cwd=cwd, check=True)


def rows(project: Path) -> list[dict[str, object]]:
    with gzip.open(project / "adult.test.csv.gz", "rt", newline="") as fh:
        return [
            {
                k: None if v == "?" else float(v) if k in NUMERIC else v
                for k, v in row.items()
                if k != "class"
            }
            for row in csv.DictReader(fh)
        ]


def post(url: str, body: object) -> None:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit("mooring serve stopped")
        try:
            with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("mooring serve did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "screenshots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    project = work / "mooring-demo"
    mooring("demo", "mooring-demo", cwd=work)
    subprocess.run(  # exit 1 on drift: the page shows it either way
        [sys.executable, "-m", "mooring", "drift", "-c", "mooring.toml", "--last", "5000"],
        cwd=project,
        check=False,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "mooring", "serve", "--port", str(port), "--no-access-log"],
        cwd=project,
    )
    stop = threading.Event()
    sample = rows(project)

    def traffic() -> None:
        at = 0
        while not stop.is_set():
            post(f"{base}/v1/models/{NAME}:predict", {"instances": sample[at : at + 5]})
            at = (at + 5) % (len(sample) - 5)
            time.sleep(0.01)

    try:
        wait_ready(base, server)
        sender = threading.Thread(target=traffic, daemon=True)
        sender.start()
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
            )
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            for name, path in (
                ("models", "/ui/"),
                ("model", f"/ui/models/{NAME}"),
                ("drift", f"/ui/models/{NAME}/drift"),
            ):
                page.goto(base + path)
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
            page.goto(f"{base}/ui/models/{NAME}/live")
            live = page.locator("#live")
            for _ in range(300):
                if int(live.get_attribute("data-points") or 0) >= 4:
                    break
                time.sleep(0.5)
            page.screenshot(path=str(OUT / "live.png"), full_page=True)
            browser.close()
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))} to {OUT}")


if __name__ == "__main__":
    main()
