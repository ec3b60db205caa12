"""The tutorial notebooks: stored without outputs, in sync with their builder, and executed.

Each notebook is executed top to bottom with nbclient on the ``python3`` kernel started
from *this* interpreter (jupyter_client replaces the kernelspec's ``python`` with
``sys.executable``), so the kernel imports the same ``recoverystats`` and the dev extra's
``ipykernel``, with Jupyter's inline matplotlib backend, as a reader's notebook runs.

The notebooks hold no assertions (they are for readers). Their key numbers (published
UIS/Rossi values, independent statsmodels fits, the simulator's truth) are checked by the
functions in ``tests/notebook_checks.py``, keyed by (notebook, code cell id): the executing
test inserts each check as a cell right after the cell it checks, in the same kernel. Any
cell error fails the test, and so does a checked cell id that no longer exists.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import time
from pathlib import Path

import pytest

from notebook_checks import CHECKS, OUTPUT, kernel_source

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
    "06-non-randomised-comparison.ipynb",
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
    # compare content (and the cell ids the checks are keyed by), not serialisation details
    # (which vary between nbformat versions)
    def content(nb):
        return [(c.cell_type, c.get("id"), c.source) for c in nb.cells]

    assert content(stored) == content(built), (
        f"notebooks/{name} differs from notebooks/build_notebooks.py; "
        "run `python notebooks/build_notebooks.py` and commit the result"
    )
    assert stored.metadata["kernelspec"] == built.metadata["kernelspec"]


#: A line of a notebook cell that checks rather than teaches (those belong in notebook_checks.py).
CHECK_LINE = re.compile(r"^\s*assert\b|np\.testing|assert_allclose|assert_frame_equal", re.M)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_cells_teach_and_do_not_test(name):
    """No assertion in a notebook cell: the checks are in tests/notebook_checks.py."""
    built = _builder().build(name)
    offending = [c.id for c in built.cells if c.cell_type == "code" and CHECK_LINE.search(c.source)]
    assert offending == [], (
        f"{name}: cells {offending} assert; move the checks to tests/notebook_checks.py "
        "(keyed by the cell id) and say in the text what is checked"
    )


@pytest.mark.parametrize("name", EXPECTED)
def test_checked_cells_exist(name):
    """Every check is keyed to a code cell the notebook has (renaming a cell breaks its checks)."""
    built = _builder().build(name)
    code_ids = {c.id for c in built.cells if c.cell_type == "code"}
    keyed = {cell for (nb, cell) in [*CHECKS, *OUTPUT] if nb == name}
    assert keyed, f"{name}: no checks in tests/notebook_checks.py"
    missing = sorted(keyed - code_ids)
    assert missing == [], f"{name}: checks are keyed to cell ids {missing}, which the notebook no longer has"


def test_checks_are_keyed_to_the_tutorials():
    assert {nb for nb, _ in [*CHECKS, *OUTPUT]} <= set(EXPECTED)


def _with_checks(nb: nbformat.NotebookNode, name: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """``nb`` with each check of tests/notebook_checks.py inserted right after its cell."""
    ids = {c.get("id") for c in nb.cells}
    missing = sorted({cell for (n, cell) in CHECKS if n == name} - ids)
    if missing:
        pytest.fail(f"{name}: checked cell ids {missing} are not in the notebook", pytrace=False)
    cells, check_ids = [], []
    for cell in nb.cells:
        cells.append(cell)
        for k, fn in enumerate(CHECKS.get((name, cell.get("id")), [])):
            check = nbformat.v4.new_code_cell(kernel_source(fn))
            check["id"] = f"check-{cell.id}-{k}"[:64]
            check.metadata["tags"] = ["check"]
            cells.append(check)
            check_ids.append(check["id"])
    nb.cells = cells
    return nb, check_ids


def _execute(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, float]:
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


def _printed(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


@pytest.mark.slow  # ~10-40 s per notebook; runs in CI with the slow tests
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes(name):
    nb, check_ids = _with_checks(nbformat.read(NB_DIR / name, as_version=4), name)
    assert check_ids, f"{name}: no checks ran"
    try:
        nb, seconds = _execute(nb)
    except nbclient.exceptions.CellExecutionError as exc:  # show the failing cell's traceback
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # the kernel's traceback, without colours
        pytest.fail(f"notebooks/{name} failed:\n{plain}", pytrace=False)
    cells = {c.id: c for c in nb.cells}
    assert all(cells[i].execution_count is not None for i in check_ids)  # every check ran
    code_cells = [c for c in nb.cells if c.cell_type == "code" and c.id not in set(check_ids)]
    assert code_cells and all(c.execution_count is not None for c in code_cells)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
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
    # what the prose points at is shown to the reader
    for (nb_name, cell_id), texts in OUTPUT.items():
        if nb_name == name:
            printed = _printed(cells[cell_id])
            for text in texts:
                assert text in printed, f"{name} cell {cell_id}: {text!r} not in its output:\n{printed}"
    print(f"{name}: {seconds:.1f} s on {sys.executable}")


@pytest.mark.slow
def test_kernel_uses_this_interpreter():
    """The python3 kernel runs this interpreter (so the venv's packages are the ones used)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys; sys.executable")]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    out = nb.cells[0].outputs[0]["data"]["text/plain"]
    assert Path(out.strip("'\"")).resolve() == Path(sys.executable).resolve()
