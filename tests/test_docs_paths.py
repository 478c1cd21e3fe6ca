"""Every repository path the README and docs/ name exists in the checkout.

docs/results.md promises that each of its numbers comes from a committed file and names that file;
a renamed study folder or report would leave the page pointing at nothing. Checked: paths in
backticks that start at a top-level folder of the repository (globs allowed, ``a.json|md`` read as
``a.json`` and ``a.md``), and relative markdown link and image targets. Paths with a placeholder
(``<method>``, ``{split}``) name a pattern, not a file, and are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
TOP_FOLDERS = ("studies", "configs", "docs", "src", "tests", "examples", "scripts")
IN_BACKTICKS = re.compile(r"`((?:%s)/[^`\s]*)`" % "|".join(TOP_FOLDERS))
LINK_TARGET = re.compile(r"\]\(([^)\s#]+)")


def _alternatives(path: str) -> list[str]:
    """``dir/quality.json|md`` -> ``dir/quality.json``, ``dir/quality.md``."""
    first, *others = path.split("|")
    stem = first.rsplit(".", 1)[0] if "." in Path(first).name else first
    return [first] + [f"{stem}.{suffix}" for suffix in others]


def _named_paths(page: Path) -> list[tuple[str, Path]]:
    text = page.read_text(encoding="utf-8")
    named: list[tuple[str, Path]] = []
    for match in IN_BACKTICKS.finditer(text):
        written = match.group(1).rstrip(".,;:)")
        if any(mark in written for mark in "<>{}"):
            continue
        named += [(written, ROOT / path) for path in _alternatives(written)]
    for match in LINK_TARGET.finditer(text):
        target = match.group(1)
        if not target.startswith(("http://", "https://", "mailto:")):
            named.append((target, (page.parent / target).resolve()))
    return named


def _exists(path: Path) -> bool:
    if any(mark in path.name or mark in str(path.parent) for mark in "*?["):
        return any(ROOT.glob(str(path.relative_to(ROOT))))
    return path.exists()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_named_path_exists(page):
    missing = [written for written, path in _named_paths(page) if not _exists(path)]
    assert not missing, f"{page.relative_to(ROOT)} names paths that are not in the repository: {missing}"


def test_the_check_sees_a_missing_path(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("From `studies/no-such-study/report/results.md` and [a](no-such.png).", encoding="utf-8")
    written = [name for name, path in _named_paths(page) if not _exists(path)]
    assert written == ["studies/no-such-study/report/results.md", "no-such.png"]


def test_alternatives_and_globs_are_read():
    assert _alternatives("studies/x/quality.json|md") == ["studies/x/quality.json", "studies/x/quality.md"]
    assert _exists(ROOT / "configs" / "study" / "*.yaml")
    assert not _exists(ROOT / "configs" / "study" / "no-such-*.yaml")
