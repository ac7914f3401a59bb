import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up noise, not our concern
sys.path.insert(0, os.path.dirname(__file__))  # the shared test helpers (cases, tolerances)

try:  # hypothesis profiles for tests/test_properties.py: `ci`, unless HYPOTHESIS_PROFILE or
    # --hypothesis-profile names another
    from hypothesis import HealthCheck, settings
except ImportError:
    pass
else:
    _common = dict(deadline=None, database=None,  # timings vary on a shared machine; no .hypothesis/ folder
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    # Deterministic in CI (the same examples every run), so CI never flakes.
    settings.register_profile("ci", max_examples=50, derandomize=True, **_common)
    # New random examples each run; a failure prints the blob that reproduces it.
    settings.register_profile("thorough", max_examples=1000, print_blob=True, **_common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def jax_float64():
    """float64 arrays for one test module (JAX keeps them off by default); the JAX test modules
    use it with `pytestmark = pytest.mark.usefixtures("jax_float64")`."""
    import jax

    enabled = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", enabled)


@pytest.fixture(autouse=True)
def jax_float64_only_where_asked(request):
    """Fails a test that leaves JAX's float64 switched on, or runs with it on without asking
    (jax_float64, or jax.enable_x64 around its own calls): users run with it off, and a test's
    setting would otherwise change what every later JAX test checks."""
    yield
    jax = sys.modules.get("jax")
    if jax is not None and jax.config.jax_enable_x64 != ("jax_float64" in request.fixturenames):
        pytest.fail(f"jax_enable_x64 is {jax.config.jax_enable_x64} after this test; only the jax_float64 "
                    "fixture may switch it on for a module", pytrace=False)


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory):
    """`twinop report` at its smallest, run once per session for every test that reads it
    (tests/test_report*.py): (results, the folder it wrote, its progress lines). Runtime 'tiny',
    only the numpy binding built."""
    import io

    from twinop.report import Progress, run_report

    out, log = tmp_path_factory.mktemp("report"), io.StringIO()
    results = run_report(str(out), device="cpu", mode="tiny", source=os.path.dirname(os.path.dirname(__file__)),
                         builds=("numpy",), progress=Progress(5, stream=log))
    return results, out, log.getvalue().splitlines()
