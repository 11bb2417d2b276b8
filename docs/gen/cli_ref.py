"""The CLI reference, rendered from the Typer app (``mooring.cli.app``) at build time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cells  # docs/gen/cells.py, beside this file on the hook's path


def commands() -> Iterator[tuple[list[str], Any, Any]]:
    """Every command and subcommand: (path, command, context), depth first, in help order."""
    import typer.main

    from mooring.cli import app

    root = typer.main.get_command(app)
    ctx = root.make_context("mooring", [], resilient_parsing=True)
    yield from _walk(["mooring"], root, ctx)


def _walk(path: list[str], cmd: Any, ctx: Any) -> Iterator[tuple[list[str], Any, Any]]:
    yield path, cmd, ctx
    for name in getattr(cmd, "commands", {}) and cmd.list_commands(ctx):
        sub = cmd.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        sub_ctx = sub.make_context(name, [], parent=ctx, resilient_parsing=True)
        yield from _walk([*path, name], sub, sub_ctx)


def _unescape(text: str) -> str:
    return text.replace("\\[", "[")


def render() -> str:
    """The whole page's Markdown."""
    out = []
    for path, cmd, ctx in commands():
        name = " ".join(path)
        level = "#" * min(len(path) + 1, 4)
        out.append(f"{level} `{name}`\n")
        if cmd.help:
            out.append(cells.cell(_unescape(cmd.help.strip())) + "\n")
        out.append(f"```text\n{cmd.get_usage(ctx).strip()}\n```\n")
        rows = [p.get_help_record(ctx) for p in cmd.get_params(ctx)]
        rows = [r for r in rows if r is not None and not r[0].startswith("--help")]
        if rows:
            out.append("| argument or option | meaning |\n|---|---|")
            out += [
                f"| {cells.code(_unescape(opts))} | {cells.cell(_unescape(text))} |"
                for opts, text in rows
            ]
            out.append("")
    return "\n".join(out)
