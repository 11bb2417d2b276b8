"""The documentation: generated references that list everything, and a short README.

The site itself is built by ``make docs`` (``mkdocs build --strict``, part of ``make
test``); these tests check what a strict build cannot: that the references generated
from the code name every mooring.toml key and every command, and that the README stays
a front page whose links lead somewhere.
"""

from __future__ import annotations

import html
import importlib.util
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT / "docs" / "gen"


def _generator(name: str) -> types.ModuleType:
    """docs/gen/NAME.py, imported as the build's hook imports it."""
    if str(GEN) not in sys.path:
        sys.path.insert(0, str(GEN))  # as the hook does: the generators import cells.py
    spec = importlib.util.spec_from_file_location(f"docs_gen_{name}", GEN / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _config_keys(model: type[BaseModel], section: str) -> list[tuple[str, str]]:
    """(section path, key) for every key of the model, recursively; a table keyed by
    the user's own names (columns) is the section ``PATH.COLUMN``."""
    out = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        key = info.alias or name
        if section:
            out.append((section, key))
        nested = _nested_model(info.annotation)
        if nested is not None:
            out += _config_keys(nested, f"{section}.{key}" if section else key)
    extra = typing.get_type_hints(model).get("__pydantic_extra__")
    nested = _nested_model(extra) if extra is not None else None
    if nested is not None:
        out += _config_keys(nested, f"{section}.COLUMN")
    return out


def _sections(markdown: str) -> dict[str, str]:
    """A generated page's text under each heading, by the heading's `[name]`."""
    parts = re.split(r"^#{2,4} `\[{1,2}([\w.]+?)\]{1,2}`$", markdown, flags=re.M)
    pairs = zip(parts[1::2], parts[2::2], strict=True)
    return {name.removesuffix(".NAME"): text for name, text in pairs}


def test_the_config_reference_lists_every_key_of_every_section() -> None:
    from mooring.config import MooringConfig

    markdown, unknown = _generator("config_ref").render()
    assert unknown == [], f"docs/gen/config_notes.md describes keys mooring.config lacks: {unknown}"
    sections = _sections(markdown)
    keys = _config_keys(MooringConfig, "")
    assert len(keys) > 100  # the walk found the nested sections too
    missing = [
        f"[{section}] {key}"
        for section, key in keys
        if not re.search(rf"^\| `{re.escape(key)}` \|", sections.get(section, ""), flags=re.M)
    ]
    assert missing == [], f"not in the mooring.toml reference: {missing}"


def test_the_config_reference_gives_types_defaults_and_descriptions() -> None:
    from mooring.config import MooringConfig

    sections = _sections(_generator("config_ref").render()[0])
    home = r'^\| `home` \| <code>str</code> \| <code>"\.mooring"</code> \| (.+) \|$'
    row = re.search(home, sections["project"], flags=re.M)
    assert row is not None
    described = MooringConfig.model_fields["project"].annotation.model_fields["home"].description
    assert row.group(1) == html.escape(described, quote=False)


def _leaf_keys_without_description(model: type[BaseModel], section: str) -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        key = f"{section}.{info.alias or name}" if section else info.alias or name
        nested = _nested_model(info.annotation)
        if nested is not None:
            out += _leaf_keys_without_description(nested, key)
        elif not (info.description or "").strip():
            out.append(key)
    return out


def test_every_config_key_has_a_description() -> None:
    from mooring.config import MooringConfig

    assert _leaf_keys_without_description(MooringConfig, "") == []


def test_the_cli_reference_lists_every_command_and_subcommand() -> None:
    import typer.main

    from mooring.cli import app

    markdown = _generator("cli_ref").render()
    headings = set(re.findall(r"^#{2,4} `(mooring[\w -]*)`$", markdown, flags=re.M))

    def walk(command: Any, path: list[str]) -> list[str]:
        names = [" ".join(path)]
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                names += walk(sub, [*path, name])
        return names

    commands = walk(typer.main.get_command(app), ["mooring"])
    assert {"mooring serve", "mooring models deploy", "mooring ops grafana"} <= set(commands)
    assert sorted(set(commands) - headings) == []
    # Each command's options are there too, e.g. score's.
    assert "<code>-o, --out &lt;str&gt;</code>" in markdown.split("## `mooring score`")[1]


def test_the_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail to docs/"


# Where `mooring docs` serves the site by default.
SITE = "http://127.0.0.1:8000/"


def _links(markdown_text: str) -> list[str]:
    """Every link target of a Markdown text: inline, reference definitions, autolinks
    and HTML ``href``/``src``."""
    return [
        *re.findall(r"\]\(\s*<?([^)\s>]+)>?[^)]*\)", markdown_text),
        *re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", markdown_text, flags=re.M),
        *re.findall(r"<((?:https?|mailto):[^>\s]+)>", markdown_text),
        *re.findall(r"""(?:href|src)=["']([^"']+)["']""", markdown_text),
    ]


def _site_pages() -> dict[str, Path]:
    """Each page of docs/ by the path MkDocs serves it at (directory URLs:
    ``how-to/gates.md`` is ``how-to/gates/``, ``index.md`` is the root)."""
    from mkdocs.structure.files import File

    docs = ROOT / "docs"
    pages = {}
    for page in docs.rglob("*.md"):
        source = page.relative_to(docs).as_posix()
        if not source.startswith("gen/"):
            url = File(source, str(docs), "site", use_directory_urls=True).url
            pages[url.removeprefix("./")] = page  # the home page's url is ./
    return pages


def _anchors(page: Path) -> set[str]:
    """The ids of a page's headings, as the site's Markdown (toc, attr_list) makes them."""
    import markdown

    md = markdown.Markdown(extensions=["toc", "attr_list", "tables", "admonition"])
    md.convert(page.read_text())

    def walk(tokens: list[dict[str, Any]]) -> set[str]:
        return {t["id"] for t in tokens} | {i for t in tokens for i in walk(t["children"])}

    return walk(md.toc_tokens)


def _broken_site_links(links: list[str]) -> list[str]:
    """The links under ``SITE`` that name no page of docs/, or no heading of it."""
    pages = _site_pages()
    broken = []
    for link in links:
        path, _, anchor = link.removeprefix(SITE).partition("#")
        page = pages.get(path)
        if page is None or (anchor and anchor not in _anchors(page)):
            broken.append(link)
    return broken


def test_every_readme_link_is_absolute_for_a_reader_off_the_repository() -> None:
    """The README is the package's description on the index, shown outside the
    repository: a relative link there leads nowhere."""
    links = _links((ROOT / "README.md").read_text())
    relative = [link for link in links if not re.match(r"^(https?://|mailto:)", link)]
    assert relative == [], f"README.md links relative to the repository: {relative}"


def test_every_readme_link_to_the_served_docs_names_a_page_and_heading() -> None:
    links = [link for link in _links((ROOT / "README.md").read_text()) if link.startswith(SITE)]
    assert len(links) > 20 and any("#" in link for link in links)  # the README links in
    broken = _broken_site_links(links)
    assert broken == [], f"README.md links to no page or heading of docs/: {broken}"


def test_a_link_to_the_served_docs_maps_to_a_page_by_the_directory_url_rule() -> None:
    right = [SITE, f"{SITE}how-to/gates/", f"{SITE}benchmarks/"]
    assert _broken_site_links([*right, f"{SITE}reference/errors/#error-classes"]) == []
    wrong = [
        f"{SITE}how-to/gates.md",  # the source's name, not the page's address
        f"{SITE}how-to/gates",  # no trailing slash
        f"{SITE}how-to/nothing/",
        f"{SITE}benchmarks/index/",
        f"{SITE}reference/errors/#no-such-heading",
    ]
    assert _broken_site_links(wrong) == wrong


def test_the_home_page_starts_with_the_install_line() -> None:
    """Before anything but the title: install the distribution, then run the demo."""
    import tomllib

    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    lines = [line for line in (ROOT / "docs" / "index.md").read_text().splitlines() if line]
    assert lines[0].startswith("# ") and lines[1] == "```bash", lines[:3]
    assert lines[2] == f"pip install {name}", lines[2]
    assert re.match(r"^mooring demo(\s|$)", lines[3]), lines[3]


def test_every_picture_in_the_docs_is_there() -> None:
    pictures = [
        (page, target)
        for page in (ROOT / "docs").rglob("*.md")
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text())
    ]
    assert pictures, "the dashboard page shows the browser tests' screenshots"
    for page, target in pictures:
        path = (page.parent / target).resolve()
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{page}: {target}"


def _shown(markdown_text: str) -> str:
    """What a reader sees of a generated page: its HTML as Python-Markdown (the site's
    renderer) makes it, tags removed and entities decoded."""
    import markdown

    page = markdown.markdown(markdown_text, extensions=["tables"])
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_the_generated_references_show_pipes_and_placeholders_as_written() -> None:
    config = _shown(_generator("config_ref").render()[0])
    cli = _shown(_generator("cli_ref").render())
    for shown in (config, cli):
        assert "\\|" not in shown  # a union type or a choice, without a backslash
        assert not re.search(r":(func|class|meth):", shown)
    assert "str | None" in config
    assert "sqlite:///<home>/registry.db" in config  # a placeholder survives
    assert "-o, --out <str>" in cli
    # Every placeholder in a command's help survives the page.
    import typer.main

    from mooring.cli import app

    def placeholders(command: Any) -> set[str]:
        found = set(re.findall(r"<[\w-]+>", command.help or ""))
        for sub in getattr(command, "commands", {}).values():
            found |= placeholders(sub)
        return found

    assert placeholders(typer.main.get_command(app)) <= set(re.findall(r"<[\w-]+>", cli))


def test_sphinx_roles_in_rendered_docstrings_become_the_code_they_name() -> None:
    cells = _generator("cells")
    page = (
        "<p>See :func:<code>~mooring.registry._rolled_back.rolled_back</code> and "
        ":class:<code>ConfigError</code>.</p>"
    )
    assert cells.without_roles(page) == (
        "<p>See <code>rolled_back</code> and <code>ConfigError</code>.</p>"
    )


def _api_sections() -> list[str]:
    page = (ROOT / "docs" / "reference" / "python.md").read_text()
    return re.findall(r"<!-- mooring:api (\S+) -->", page)


def test_the_python_api_page_has_a_section_for_mooring_and_each_face_it_draws_on() -> None:
    import mooring

    faces = {m for m in mooring._EXPORTS.values() if not m.removeprefix("mooring.").startswith("_")}
    assert sorted(_api_sections()) == sorted({"mooring", *faces})


def test_the_python_api_reference_documents_every_exported_name() -> None:
    import mooring

    api_ref = _generator("api_ref")
    missing = []
    for face in _api_sections():
        module = importlib.import_module(face)
        exported = mooring._EXPORTS if face == "mooring" else module.__all__
        words = set(re.findall(r"\w+", api_ref.render(face)))
        missing += [f"{face}.{name}" for name in exported if name not in words]
    assert missing == []
    for key in api_ref.OPTIONS:  # options for a name no longer exported would go unused
        face, _, name = key.rpartition(".")
        assert name in importlib.import_module(face).__all__, key


def test_the_commands_and_code_of_the_docs_fit_their_box() -> None:
    """Every line of a bash or python block (what a reader pastes) is at most 100
    characters, which the site's content column shows whole (docs/assets/extra.css)."""
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    wide = []
    for page in pages:
        if "gen" in page.relative_to(ROOT).parts:
            continue
        language = None
        for number, line in enumerate(page.read_text().splitlines(), 1):
            fence = re.match(r"^```(\w*)", line)
            if fence:
                language = None if language is not None else fence.group(1)
            elif language in ("bash", "python") and len(line) > 100:
                wide.append(f"{page.relative_to(ROOT)}:{number} ({len(line)})")
    assert wide == [], "wrap these lines (at most 100 characters):\n" + "\n".join(wide)


def test_every_logger_the_docs_name_is_one_the_code_logs_to() -> None:
    """A logger named in a page (`` `mooring.x` log``/``logger``, ``logger `mooring.x` ``)
    is one ``logging.getLogger`` is called with: a reader sets its level by that name."""
    used = {
        m.group(1)
        for path in (ROOT / "src" / "mooring").rglob("*.py")
        for m in re.finditer(r'getLogger\("(mooring[\w.]*)"\)', path.read_text())
    }
    named = re.compile(r"`(mooring\.[\w.]+)`\s+log(?:ger)?\b|\blogger\s+`(mooring\.[\w.]+)`")
    wrong = {
        (str(page.relative_to(ROOT)), m.group(1) or m.group(2))
        for page in (ROOT / "docs").rglob("*.md")
        for m in named.finditer(page.read_text())
        if (m.group(1) or m.group(2)) not in used
    }
    assert len(used) > 5 and not wrong, f"loggers the code never names: {sorted(wrong)}"
