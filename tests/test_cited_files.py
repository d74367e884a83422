"""Every file the code and the docs cite exists in the repository (THEORY.md, DESIGN.md,
docs/*.md, proofs/*.md, ...): a reference to a file that is not here misleads the reader."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: A cited Markdown file: a bare name (THEORY.md) or a repository path (docs/bounds.md).
CITATION = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[A-Z][\w-]*\.md|(?:docs|proofs)/[\w-]+\.md)")
#: Files the tool writes into its output folders, cited as outputs rather than sources.
OUTPUT_NAMES = {"report.md", "table.md", "witness.md"}


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.toml", "Makefile"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).exists()]


def resolve(citation: str, citing: Path) -> bool:
    """A citation resolves against the repository root, the citing file's folder, or (a
    bare name) the folders that hold the project's Markdown pages."""
    candidates = [ROOT / citation, citing.parent / citation]
    if "/" not in citation:
        candidates += [ROOT / "docs" / citation, ROOT / "proofs" / citation]
    return any(path.is_file() for path in candidates)


def test_every_cited_markdown_file_exists():
    missing = sorted(
        f"{path.relative_to(ROOT)}: {citation}"
        for path in tracked_text_files()
        for citation in set(CITATION.findall(path.read_text(encoding="utf-8")))
        if citation not in OUTPUT_NAMES and not resolve(citation, path)
    )
    assert missing == []


def test_the_specification_and_the_design_are_in_the_repository():
    theory = (ROOT / "THEORY.md").read_text(encoding="utf-8")
    for section in range(1, 8):
        assert re.search(rf"^## {section}\. ", theory, re.M), f"THEORY.md lacks section {section}"
    for caveat in [f"C{i}" for i in range(1, 10)]:
        assert f"**{caveat} " in theory, caveat
    assert "## Layout" in (ROOT / "DESIGN.md").read_text(encoding="utf-8")
