"""The documentation site: it builds strictly, and its configuration reference lists every config field."""

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import AppConfig
from app.serve_config import ServeConfig

ROOT = Path(__file__).resolve().parents[2]


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def _rows(page: Path) -> dict[str, str]:
    """Each table row of a built page as plain text, by its first cell."""
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", page.read_text(), re.DOTALL):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.DOTALL)
        ]
        if cells:
            rows[cells[0]] = " | ".join(cells)
    return rows


def test_configuration_page_lists_every_field_with_its_default_and_description(site):
    rows = _rows(site / "configuration" / "index.html")
    hooks = _hooks()
    expected = [(key, info) for key, _, info in hooks.fields(AppConfig)]
    expected += [(f"args.{key}", info) for key, _, info in hooks.fields(ServeConfig)]
    assert len(expected) > 80  # every section, nested ones included
    for key, info in expected:
        row = rows.get(key)
        assert row, f"{key} is missing from the configuration reference"
        if info.description:
            assert info.description.replace("`", "").split(".")[0][:60] in row, (key, row)
        default = hooks.default_text(info).strip("`")
        assert default in row, (key, default, row)


def test_a_new_field_reaches_the_reference():
    # The tables are read from the classes at build time, so a field added to a model is documented.
    from pydantic import Field

    from app.serve_config import Section

    class Extra(Section):
        """A section for the test."""

        knob: int = Field(3, ge=1, description="Turns the thing.")

    text = _hooks().tables(Extra, "extra.")
    assert "| `extra.knob` | int (≥ 1) | `3` | Turns the thing. |" in text


def test_python_api_page_is_built_from_docstrings(site):
    page = _text(site / "api" / "index.html")
    assert "load_model" in page and "AutoMLEngine" in page
    # A docstring sentence, not only the name: mkdocstrings read the code.
    assert "Read and validate a YAML file" in page


def test_readme_is_short_and_indexes_the_site():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for page in ("getting-started", "search", "serving", "configuration", "troubleshooting"):
        assert f"docs/{page}.md" in readme, page
