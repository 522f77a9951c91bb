"""No artifact is ever unpickled: the package and the job entrypoints call none of the loaders that run
code from a file (pickle, cloudpickle, dill, joblib, pandas' read_pickle, numpy's allow_pickle). Models,
preprocessors and profiles are native files and JSON; a pickled artifact is arbitrary code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("app", "jobs")
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "torch"}
LOADERS = {"load", "loads", "Unpickler"}


def unpickling_calls(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: call`` for every unpickling call in ``source`` (aliases and from-imports followed)."""
    tree = ast.parse(source, filename)
    modules: dict[str, str] = {}  # local name -> pickle-like module
    functions: dict[str, str] = {}  # local name -> module.loader
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in PICKLE_MODULES:
                    modules[alias.asname or root] = root
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            for alias in node.names:
                if root in PICKLE_MODULES and alias.name in LOADERS:
                    functions[alias.asname or alias.name] = f"{root}.{alias.name}"
                if alias.name == "read_pickle":
                    functions[alias.asname or alias.name] = f"{node.module}.read_pickle"
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, what = node.func, None
        if isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            if owner in modules and func.attr in LOADERS:
                what = f"{modules[owner]}.{func.attr}"
            elif func.attr == "read_pickle":
                what = "read_pickle"
        elif isinstance(func, ast.Name) and func.id in functions:
            what = functions[func.id]
        for kw in node.keywords:
            if kw.arg == "allow_pickle" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                what = "allow_pickle=True"
        if what:
            found.append(f"{filename}:{node.lineno}: {what}")
    return found


def test_package_and_jobs_never_unpickle():
    files = [p for d in SCANNED for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 50
    found = [hit for p in files for hit in unpickling_calls(p.read_text(), str(p.relative_to(ROOT)))]
    assert not found, "unpickling calls (load native model files or JSON instead):\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "import pickle\nm = pickle.load(open(path, 'rb'))",
        "import pickle as pk\nm = pk.loads(Path(path).read_bytes())",
        "from joblib import load\nm = load('model.joblib')",
        "import joblib\nm = joblib.load(path)",
        "from cloudpickle import loads as cl\nm = cl(blob)",
        "import cloudpickle\nm = cloudpickle.load(f)",
        "import pandas as pd\ndf = pd.read_pickle(path)",
        "import numpy as np\na = np.load(path, allow_pickle=True)",
    ],
)
def test_scanner_finds_each_unpickling_form(source):
    assert unpickling_calls(source)


def test_scanner_ignores_safe_loads():
    source = "import json, numpy as np, xgboost\njson.load(f)\nnp.load(p)\nxgboost.Booster().load_model(p)"
    assert unpickling_calls(source) == []
