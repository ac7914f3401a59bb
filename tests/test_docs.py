"""README.md and docs/: every relative link resolves, the verdicts block is the committed run's,
the README stays a front page and keeps the test command CI runs."""
import glob
import json
import os
import re

import pytest

from twinop.report import readme

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "CHANGELOG.md")] + sorted(
    glob.glob(os.path.join(ROOT, "docs", "*.md")))
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
# `csrc/core/bias_act.h`, `tests/test_*_autodiff.py`, `cuda/vector_io.cuh:63`: a file of the tree named in
# code style (a folder, such as an output folder a script makes, is not checked)
TREE_PATH = re.compile(r"`((?:csrc|cuda|python|tests|bench|cmake|examples|docs|\.ci)/[^`\s:<>]*"
                       r"\.(?:h|cpp|cc|cu|cuh|py|sh|md|json|txt|toml|in|png))(?::[\d-]+)?`")


def _text(path):
    with open(path) as f:
        return f.read()


def broken_links(path):
    """The relative links and tree paths in one page that name nothing in the checkout."""
    text, here = _text(path), os.path.dirname(path)
    broken = []
    for target in MARKDOWN_LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in the page itself
        if not os.path.exists(os.path.join(here, target.split("#")[0])):
            broken.append(target)
    for name in TREE_PATH.findall(text):
        if not glob.glob(os.path.join(ROOT, name)):
            broken.append(name)
    return broken


def test_the_pages_exist():
    names = {os.path.relpath(p, ROOT) for p in PAGES if os.path.exists(p)}
    assert {"README.md", "CHANGELOG.md", "docs/reading-guide.md", "docs/adding-an-op.md"} <= names


@pytest.mark.parametrize("path", PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) [gone](nothere.md#x) [web](https://example.org) `csrc/core/no_such.h:3` "
                    "`csrc/core/bias_act.h:12` `bench/results/device-run/`\n")
    assert broken_links(str(page)) == ["nothere.md#x", "csrc/core/no_such.h"]


def test_readme_verdicts_are_the_committed_runs():
    """After a new run is committed under bench/results/, `python -m twinop.report.readme` rewrites them."""
    assert readme.current_block(_text(os.path.join(ROOT, "README.md"))) == readme.block(ROOT)


def _run(root, name, created, devices):
    os.makedirs(root / "bench" / "results" / name)
    meta = {"created": created, "devices": devices}
    (root / "bench" / "results" / name / "results.json").write_text(json.dumps({"meta": meta}))


def test_the_block_comes_from_the_newest_cpu_run(tmp_path):
    _run(tmp_path, "cpu-a", "2026-12-03T16:30:22+00:00", ["cpu"])
    _run(tmp_path, "cpu-b", "2026-11-27T13:55:29+00:00", ["cpu"])
    _run(tmp_path, "gpu", "2026-12-09T10:00:00+00:00", ["cpu", "cuda"])
    assert readme.newest_cpu_run(str(tmp_path)) == str(tmp_path / "bench" / "results" / "cpu-a")


def test_readme_is_a_front_page():
    assert len(_text(os.path.join(ROOT, "README.md")).splitlines()) <= 220


def test_readme_shows_the_test_command_ci_runs():
    ci = _text(os.path.join(ROOT, ".ci", "run")).splitlines()
    command = ci[ci.index("# The README's test command:") + 1]
    assert command in _text(os.path.join(ROOT, "README.md")).splitlines()
