"""Python files parsed to syntax trees, safe from a bug of the interpreter's parser.

On CPython before 3.11.8, an AST construction that failed earlier in the process
(inside some library) leaves the constructor's recursion counter off, and a later
``ast.parse`` raises ``SystemError: AST constructor recursion depth mismatch``
(python/cpython#106905). Seen in pytest-xdist workers after hours of other tests: the
file is then parsed again in a fresh interpreter, whose tree is the same.

Examples:
    >>> tree = parse_file(Path(__file__))
    >>> isinstance(tree, ast.Module)
    True
"""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

__all__ = ["parse_file"]

_FRESH = (
    "import ast, pickle, sys; sys.stdout.buffer.write(pickle.dumps(ast.parse("
    "open(sys.argv[1], encoding='utf-8').read())))"
)


def parse_file(path: Path) -> ast.Module:
    """The syntax tree of the Python file at ``path`` (UTF-8)."""
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except SystemError as error:
        if "recursion depth mismatch" not in str(error):
            raise
    done = subprocess.run(
        [sys.executable, "-c", _FRESH, str(path)], capture_output=True, check=True, timeout=60
    )
    tree: ast.Module = pickle.loads(done.stdout)
    return tree
