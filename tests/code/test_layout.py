"""The code's layout rules: figures live in bench/ output and the docs, not in comments; files stay small."""

import io
import re
import tokenize
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

# A number with a unit of time, size or share: "13 us", "0.03 s", "23%", "22 MB", "1.5 GiB".
FIGURE = re.compile(r"\d[\d.,]*\s?(?:s|ms|µs|us|%|[KMGT]i?B)(?![\w/])")


def _comments(path: Path):
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.COMMENT:
            yield tok.start[0], tok.string


def test_no_measured_figures_in_app_comments():
    found = [
        f"{path.relative_to(APP.parent)}:{line}: {text.strip()}"
        for path in sorted(APP.rglob("*.py"))
        for line, text in _comments(path)
        if FIGURE.search(text)
    ]
    assert not found, "figures belong in bench/ output and docs/performance.md:\n" + "\n".join(found)


def test_the_figure_pattern_catches_what_it_should():
    assert FIGURE.search("# ~13 us in a py-spy profile")
    assert FIGURE.search("# left 23% of the budget")
    assert FIGURE.search("# a 22 MB model")
    assert not FIGURE.search("# Ray 2.60 takes a temp dir per node")
    assert not FIGURE.search("# 128 + SIGINT")


def test_no_file_in_app_is_over_400_lines():
    long = {
        str(p.relative_to(APP.parent)): n
        for p in APP.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, long
