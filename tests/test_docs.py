"""The repository documents its own mathematics (docs/mathematics.md), and its files
cite that page, not notes that live outside the repository."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATHEMATICS = ROOT / "docs" / "mathematics.md"

# spelled in pieces so that this file does not cite them itself
FORBIDDEN = ("HL" + ".md", "DESIGN" + ".md", "../" + "shared")


def repository_files():
    for folder, subfolders, files in os.walk(ROOT):
        # prune .git, virtual environments and caches before walking into them
        subfolders[:] = sorted(d for d in subfolders if not (
            d.startswith(".") or d == "__pycache__" or d.endswith(".egg-info")))
        for name in sorted(files):
            if not name.startswith("."):
                path = Path(folder) / name
                yield path.relative_to(ROOT).as_posix(), path


def text_of(path):
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""                         # binary files (Numba caches, images)


def test_no_file_cites_notes_outside_the_repository():
    citing = [(rel, word) for rel, path in repository_files()
              for word in FORBIDDEN if word in text_of(path)]
    assert not citing, f"cite docs/mathematics.md instead: {citing}"


def test_citations_of_the_mathematics_point_at_existing_sections():
    headings = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", MATHEMATICS.read_text(), re.M))
    assert {"1", "2", "6.2", "8", "10"} <= headings
    for rel, path in repository_files():
        for first, last in re.findall(r"docs/mathematics\.md,? sections? ([\d.]+)(?:(?:-| and )([\d.]+))?",
                                      text_of(path)):
            for section in filter(None, (first.rstrip("."), last.rstrip("."))):
                assert section in headings, f"{rel} cites section {section} of docs/mathematics.md"


def test_every_test_file_named_in_the_mathematics_exists():
    for name in re.findall(r"`(tests/\w+\.py)`", MATHEMATICS.read_text()):
        assert (ROOT / name).is_file(), name
