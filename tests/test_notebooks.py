"""The tutorial notebooks: stored without outputs, in sync with their builder, and executed.

Each notebook is executed top to bottom with nbclient on the ``python3`` kernel started
from *this* interpreter (jupyter_client replaces the kernelspec's ``python`` with
``sys.executable``), so the kernel imports the same ``recoverystats`` and the dev extra's
``ipykernel``. Any cell error fails the test; the notebooks assert their own key numbers
(published UIS/Rossi values, independent statsmodels fits, the simulator's truth).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"

#: Upper bound on one notebook's execution (the target is ~30 s on a quiet 2-core machine;
#: the CI machine is shared, so the per-cell timeout is generous).
CELL_TIMEOUT_S = 300
#: The backend a Jupyter kernel uses by default: figures made through pyplot during a cell
#: are displayed (as image/png) when the cell ends. CI exports MPLBACKEND=Agg for the test
#: process, so the kernel's backend is set explicitly.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"

EXPECTED = [
    "01-quickstart.ipynb",
    "02-recidivism-odds-ratios.ipynb",
    "03-time-to-relapse.ipynb",
    "04-quarterly-report.ipynb",
    "05-which-mentor-characteristics-matter.ipynb",
]


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", NB_DIR / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_expected_notebooks_exist():
    found = sorted(p.name for p in NB_DIR.glob("*.ipynb"))
    assert found == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_stored_without_outputs(name):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell has stored outputs; clear them"
            assert cell.execution_count is None, f"{name}: a code cell has an execution count"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_matches_builder(name):
    """The stored file is exactly what notebooks/build_notebooks.py writes (edit the builder)."""
    builder = _builder()
    stored = nbformat.read(NB_DIR / name, as_version=4)
    built = builder.build(name)
    # compare content, not serialisation details (which vary between nbformat versions)
    assert [(c.cell_type, c.source) for c in stored.cells] == [(c.cell_type, c.source) for c in built.cells], (
        f"notebooks/{name} differs from notebooks/build_notebooks.py; "
        "run `python notebooks/build_notebooks.py` and commit the result"
    )
    assert stored.metadata["kernelspec"] == built.metadata["kernelspec"]


def _execute(name: str) -> tuple[nbformat.NotebookNode, float]:
    nb = nbformat.read(NB_DIR / name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NB_DIR)}},
        allow_errors=False,
    )
    env_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = INLINE_BACKEND  # inherited by the kernel (CI exports Agg)
    t0 = time.perf_counter()
    try:
        client.execute()
    finally:
        if env_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backend
    return nb, time.perf_counter() - t0


@pytest.mark.slow  # ~8-30 s per notebook; runs in CI with the slow tests
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes(name):
    try:
        nb, seconds = _execute(name)
    except nbclient.exceptions.CellExecutionError as exc:  # show the failing cell's traceback
        pytest.fail(f"notebooks/{name} failed:\n{exc}", pytrace=False)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells and all(c.execution_count is not None for c in code_cells)
    errors = [o for c in code_cells for o in c.outputs if o.get("output_type") == "error"]
    assert errors == []
    # the first cell's last expression is rs.__version__: check the kernel imported this package
    from recoverystats import __version__

    first = code_cells[0].outputs
    shown = [o["data"]["text/plain"] for o in first if o.get("output_type") == "execute_result"]
    assert shown == [repr(__version__)], shown
    # every cell that draws shows its figure inline; no other cell shows one (the report's own
    # figures are rendered off pyplot and must not leak into the notebook as images)
    for c in code_cells:
        images = [o for o in c.outputs if "image/png" in o.get("data", {})]
        if ".plot(" in c.source:
            assert images, f"{name} cell {c.id}: calls .plot( but shows no image:\n{c.source}"
        elif "plt." not in c.source:
            assert not images, f"{name} cell {c.id}: shows {len(images)} image(s) but draws nothing"
    print(f"{name}: {seconds:.1f} s on {sys.executable}")


@pytest.mark.slow
def test_kernel_uses_this_interpreter():
    """The python3 kernel runs this interpreter (so the venv's packages are the ones used)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys; sys.executable")]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    out = nb.cells[0].outputs[0]["data"]["text/plain"]
    assert Path(out.strip("'\"")).resolve() == Path(sys.executable).resolve()
