"""Citations of documentation never dangle.

Code, tests and benchmarks cite the protocol documents as ``docs/routing.md §4.8``. Every cited
``.md`` file must exist in the repository (paths are relative to its root), and every ``§N.M``
must be a numbered heading of the document cited last before it in the same file (a ``§`` after
``RFC nnnn`` is the RFC's). Links between the documents under ``docs/`` must resolve too,
anchors included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("src", "tests", "bench")
DOCS = ROOT / "docs"

#: A ``.md`` file name, possibly with a directory path (``docs/wire.md``, ``README.md``).
_MD_FILE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-][\w.-]*\.md)(?![\w-])")
_SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
_RFC_BEFORE = re.compile(r"RFC\s?\d+\s*$")
_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def scanned_files() -> list[Path]:
    """Every Python file under the scanned directories but this one (it quotes bad examples)."""
    files: list[Path] = []
    for top in SCANNED:
        files += sorted(p for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)
    return [p for p in files if p != Path(__file__).resolve()]


def sections(doc: Path) -> set[str]:
    """The numbers of a document's numbered headings (``## 4. Framing`` -> ``4``)."""
    return set(_HEADING.findall(doc.read_text(encoding="utf-8")))


def citations(text: str) -> Iterator[tuple[int, str | None, str | None]]:
    """(line, cited file or None, section or None) in order of appearance; a section comes
    with the file cited last before it (None if there was none)."""
    events: list[tuple[int, str, str]] = []
    for m in _MD_FILE.finditer(text):
        events.append((m.start(), "file", m.group(1)))
    for m in _SECTION.finditer(text):
        if not _RFC_BEFORE.search(text[max(0, m.start() - 12) : m.start()]):
            events.append((m.start(), "section", m.group(1)))
    current: str | None = None
    for pos, kind, value in sorted(events):
        line = text.count("\n", 0, pos) + 1
        if kind == "file":
            current = value
            yield line, value, None
        else:
            yield line, current, value


def dangling(path: Path) -> list[str]:
    problems: list[str] = []
    known: dict[str, set[str] | None] = {}
    where = path.relative_to(ROOT)
    for line, cited, section in citations(path.read_text(encoding="utf-8")):
        if cited is None:
            problems.append(f"{where}:{line}: §{section} names no document (write docs/X.md §N)")
            continue
        if cited not in known:
            target = ROOT / cited
            known[cited] = sections(target) if target.is_file() else None
        headings = known[cited]
        if headings is None:
            if section is None:
                problems.append(f"{where}:{line}: {cited} does not exist in the repository")
            continue
        if section is not None and section not in headings:
            problems.append(f"{where}:{line}: {cited} has no section {section}")
    return problems


def test_every_cited_document_and_section_exists() -> None:
    problems = [p for path in scanned_files() for p in dangling(path)]
    assert not problems, "dangling documentation citations:\n" + "\n".join(problems)


def test_the_checker_catches_what_it_should(tmp_path: Path) -> None:
    """The rules above, on a made-up file (so a checker that finds nothing cannot pass)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""See docs/wire.md §4.5 and §99.1, routing.md §4.8, RFC 8966 §3.2.1."""\n'
        "# §2 with no document of its own\n",
        encoding="utf-8",
    )
    found = list(citations(sample.read_text(encoding="utf-8")))
    assert (1, "docs/wire.md", "4.5") in found
    assert (1, "docs/wire.md", "99.1") in found
    assert (1, "routing.md", "4.8") in found
    assert all(section != "3.2.1" for _, _, section in found)
    assert (2, "routing.md", "2") in found
    assert "4.5" in sections(DOCS / "wire.md") and "99.1" not in sections(DOCS / "wire.md")
    assert list(citations("§7 first, docs/wire.md after")) == [
        (1, None, "7"),
        (1, "docs/wire.md", None),
    ]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m and not in_code:
            base = github_anchor(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_links_between_documents_resolve(doc: Path) -> None:
    problems = []
    for target in _LINK.findall(doc.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        file_part, _, anchor = target.partition("#")
        if file_part and not file_part.endswith(".md"):
            continue
        linked = doc if not file_part else (doc.parent / file_part)
        if not linked.is_file():
            problems.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(linked):
            problems.append(f"{target}: no such heading in {linked.name}")
    assert not problems, f"broken links in docs/{doc.name}:\n" + "\n".join(problems)


def test_github_anchor_rules() -> None:
    assert github_anchor("4.8 Sending Updates") == "48-sending-updates"
    assert github_anchor("6.3.6 The reference's datagram limit") == (
        "636-the-references-datagram-limit"
    )
    assert github_anchor("10.7 What we send, and what our decoder refuses") == (
        "107-what-we-send-and-what-our-decoder-refuses"
    )
