"""Rules the test suite keeps so that it skips what was not built instead of erroring."""
import ast
import glob
import os
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))


def test_importorskip_no_longer_skips_a_plain_import_error(tmp_path, monkeypatch):
    """Why the rule below: a twinop binding that was not built raises ImportError, which the pinned
    pytest's importorskip passes on unless told (only ModuleNotFoundError skips by default)."""
    (tmp_path / "unbuilt_binding.py").write_text("raise ImportError('built without its op')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError):
        pytest.importorskip("unbuilt_binding")
    sys.modules.pop("unbuilt_binding", None)
    with pytest.raises(pytest.skip.Exception):
        pytest.importorskip("unbuilt_binding", exc_type=ImportError)


def importorskips_of_twinop_without_exc_type(path):
    """(line, module) of each pytest.importorskip("twinop...") call in the file that does not pass exc_type."""
    found = []
    for node in ast.walk(ast.parse(open(path).read())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "importorskip"
                and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        if str(node.args[0].value).startswith("twinop") and not any(k.arg == "exc_type" for k in node.keywords):
            found.append((node.lineno, node.args[0].value))
    return found


def test_every_importorskip_of_a_binding_skips_an_unbuilt_one():
    missing = {os.path.basename(path): calls for path in glob.glob(os.path.join(TESTS, "*.py"))
               if (calls := importorskips_of_twinop_without_exc_type(path))}
    assert missing == {}
