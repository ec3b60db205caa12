"""Documentation stays correct: links resolve, examples run, the API reference is current,
and every docstring example in ``src/recoverystats`` passes as a doctest.

- every relative link (and ``#anchor``) in ``docs/*.md`` and ``README.md`` resolves;
- every ```` ```python ```` block of ``docs/getting-started.md`` runs, in order, in one
  namespace, from the repository root (so the page works as written);
- ``docs/api.md`` is exactly what ``tools/make_api_docs.py`` writes;
- every docstring with ``>>>`` examples in the package runs as a doctest
  (NORMALIZE_WHITESPACE | ELLIPSIS), one test per docstring.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import recoverystats

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MD_FILES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]

LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading (lower case, punctuation dropped, spaces -> hyphens)."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    out: set[str] = set()
    counts: dict[str, int] = {}
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
        s = _slug(m.group(1))
        n = counts.get(s, 0)
        out.add(s if n == 0 else f"{s}-{n}")
        counts[s] = n + 1
    return out


def _links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # links inside inline code are not links
    return [m.group("target") for m in LINK.finditer(text)]


def test_slug_matches_github():
    assert _slug("The mapping file (`program.toml`)") == "the-mapping-file-programtoml"
    assert _slug("Loading program data — `recoverystats.io`") == "loading-program-data--recoverystatsio"


def test_docs_folder_has_the_expected_pages():
    names = {p.name for p in DOCS.glob("*.md")}
    assert {"index.md", "getting-started.md", "mapping.md", "api.md"} <= names


@pytest.mark.parametrize("path", MD_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    bad = []
    for target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            bad.append(f"{target} (no such file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
            continue
        if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target} (no heading with anchor #{anchor} in {dest.name})")
    assert bad == [], f"{path.relative_to(ROOT)}: broken links: {bad}"


def test_index_links_every_doc_page():
    linked = {t.partition("#")[0] for t in _links(DOCS / "index.md")}
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    missing = sorted(pages - linked)
    assert missing == [], f"docs/index.md does not link {missing}"


def _python_blocks(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_getting_started_code_runs(monkeypatch, tmp_path):
    blocks = _python_blocks(DOCS / "getting-started.md")
    assert len(blocks) >= 6
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, object] = {"__name__": "__getting_started__"}
    for i, block in enumerate(blocks, 1):
        code = compile(block, f"docs/getting-started.md[python block {i}]", "exec")
        exec(code, namespace)  # noqa: S102 - the point of the test
    import matplotlib.pyplot as plt

    plt.close("all")
    # the page's first block reproduced the published value; check it really ran
    assert "fit" in namespace and "km" in namespace


def test_mapping_page_code_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    for block in _python_blocks(DOCS / "mapping.md"):
        exec(compile(block, "docs/mapping.md", "exec"), {"__name__": "__mapping__"})  # noqa: S102


def test_mapping_page_quotes_the_sample_program_toml():
    """Every TOML line quoted on docs/mapping.md appears in data/sample/program.toml."""
    sample = {ln.split("#")[0].strip() for ln in (ROOT / "data/sample/program.toml").read_text().splitlines()}
    text = (DOCS / "mapping.md").read_text(encoding="utf-8")
    quoted = []
    for block in re.findall(r"^```toml\n(.*?)^```", text, flags=re.S | re.M):
        quoted += [ln.split("#")[0].strip() for ln in block.splitlines()]
    quoted = [q for q in quoted if q]
    assert quoted
    missing = [q for q in quoted if q not in sample]
    assert missing == [], f"docs/mapping.md quotes lines not in data/sample/program.toml: {missing}"


def _api_builder():
    spec = importlib.util.spec_from_file_location("make_api_docs", ROOT / "tools" / "make_api_docs.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_current():
    builder = _api_builder()
    expected = builder.render()
    current = (DOCS / "api.md").read_text(encoding="utf-8")
    assert current == expected, "docs/api.md is out of date: run `python tools/make_api_docs.py`"


def test_api_reference_covers_the_public_api():
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    for name in recoverystats._LAZY:
        assert f"### `{name}`" in text, name
    for cls in ("OddsRatioResult", "SurvivalResult", "HazardRatioResult", "RateResult", "ProgramData"):
        assert f"### `{cls}`" in text, cls


def test_docstring_conversion():
    builder = _api_builder()
    doc = """Summary line.

    Parameters
    ----------
    df : DataFrame
        The data.

    Examples
    --------
    >>> 1 + 1
    2
    """
    md = builder.docstring_to_markdown(doc)
    assert "**Parameters**" in md and "- `df` : DataFrame" in md and "  The data." in md
    assert "```python\n>>> 1 + 1\n2\n```" in md
    assert "----------" not in md


# ---------------------------------------------------------------------------------------
# doctests
#: optional extras a module may need (pyproject [project.optional-dependencies]); a module
#: that cannot be imported only because one of these is missing is skipped, not failed
OPTIONAL_DEPENDENCIES = {"duckdb", "lifelines"}
IMPORT_ERRORS: dict[str, str] = {}


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for info in pkgutil.walk_packages(recoverystats.__path__, "recoverystats."):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # collect, so one broken module does not hide the rest
            IMPORT_ERRORS[info.name] = f"{type(exc).__name__}: {exc} ({exc.name})"
            continue
        except Exception as exc:  # noqa: BLE001 - reported by test_every_module_imports
            IMPORT_ERRORS[info.name] = f"{type(exc).__name__}: {exc}"
            continue
        for t in finder.find(module, info.name):
            # a docstring is found once per module that imports it; keep the defining module's
            if t.examples and t.name.startswith(info.name + "."):
                tests.append(t)
    return sorted({t.name: t for t in tests}.values(), key=lambda t: t.name)


DOCTESTS = _doctests()


def test_every_module_imports():
    """Every module imports (so its doctests ran), except for a missing optional extra."""
    bad = {m: e for m, e in IMPORT_ERRORS.items()
           if not any(f"({dep})" in e or f"'{dep}'" in e for dep in OPTIONAL_DEPENDENCIES)}
    assert bad == {}


def test_doctests_were_found():
    # the public entry points carry runnable examples (STYLE.md); guard against a finder change
    names = {t.name.rsplit(".", 1)[-1] for t in DOCTESTS}
    assert {"proportion", "odds_ratios", "survival_curve", "hazard_ratios"} <= names


@pytest.mark.parametrize("test", DOCTESTS, ids=lambda t: t.name)
def test_docstring_examples(test, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    report: list[str] = []
    test.globs = dict(test.globs)  # do not leak names between runs
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


# ---------------------------------------------------------------------------------------
# the benchmark table (README snippet) is what benchmarks/run_all.py writes
def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["run_all"] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def test_readme_performance_table_is_the_one_in_results():
    """The README's performance table has run_all's header and is RESULTS.md's targets table."""
    run_all = _run_all()
    text = run_all.render([], quick=False, command="x", started="t", elapsed=1.0, mach={}, vers={})
    header = next(ln for ln in text.splitlines() if ln.startswith("| work |"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert header in readme.splitlines()
    assert "python benchmarks/run_all.py" in readme
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    targets = results[results.index("## Targets"):]
    targets = targets[: targets.index("\n## ", 3)]
    rows = [ln for ln in targets.splitlines() if ln.startswith("| ")]
    assert rows and all(r in readme.splitlines() for r in rows), "README table differs from benchmarks/RESULTS.md"


# Lines in the exact format the per-area scripts print (see each script's print calls).
BENCH_OUTPUT = {
    "load": (
        "bare pyarrow.csv.read_csv              1.20 s  peak +900 MB  (arrow tables 700 MB)\n"
        "bare read_csv + to_pandas()            2.00 s  peak +1,500 MB\n"
        "read_program (load + validate)         1.50 s  peak +2,100 MB  (pandas tables 1,000 MB; 0 findings; "
        "flow balanced: True)\n"
        "time ratio read_program / bare pyarrow read: 1.25  (target <= 1.5)\n"
        "peak memory / in-memory tables:               2.10  (target <= 3)\n"
    ),
    "regression": (
        "  plain SEs   : statsmodels Logit   4.000 s | odds_ratios   3.000 s | ratio  0.75 (target <= 1.0)\n"
        "  cluster CR1 : statsmodels Logit   4.000 s | odds_ratios   5.000 s | ratio  1.25 (target <= 1.0)\n"
        "  g-computation RD, 2000 bootstrap reps at n = 500:  1.500 s (target <= 2 s)\n"
    ),
    "survival": (
        "Kaplan-Meier, 1,000,000 rows, 2 groups: ours 0.500 s, lifelines 1.000 s, ratio 0.50 (target <= 1.0); "
        "max |dS| = 1.0e-15\n"
        "Cox (Efron), 100,000 rows x 8 covariates: ours 3.000 s, lifelines 2.000 s, ratio 1.50 (target <= 1.0); "
        "max rel. coef difference 1.0e-08\n"
    ),
    "report": "total report time 70.00 s (target <= 60 s)\npeak memory 3.50 GB (process peak RSS, target <= 4 GB)\n",
    "missing": (
        "  impute 100000 rows x 20 columns, m = 20: 95.20 s (target <= 120 s)\n"
        "  pooled odds_ratios over 20 sets 12.500 s | 20 single fits 11.000 s | ratio 1.14 (target <= 1.2)\n"
    ),
}


@pytest.mark.parametrize("name, expected", [
    ("load", ["met", "met"]),
    ("regression", ["met", "missed", "met"]),
    ("survival", ["met", "missed"]),
    ("report", ["missed"]),
    ("missing", ["met", "met"]),
])
def test_run_all_parses_the_scripts_output(name, expected):
    run_all = _run_all()
    target = next(t for t in run_all.TARGETS if t.name == name)
    run = run_all.Run(name=name, cmd=["x"], returncode=0, stdout=BENCH_OUTPUT[name])
    rows = target.parse(run, "scale")
    assert [r.status for r in rows] == expected
    if name == "load":
        assert rows[0].ratio == "1.25" and rows[1].ratio == "2.10"
    if name == "survival":
        assert rows[1].ratio == "1.50" and "100,000 rows × 8 covariates" in rows[1].work
    if name == "report":
        assert rows[0].ours == "70.0 s" and rows[0].reason == "time"
    if name == "missing":
        assert rows[0].ours == "95.2 s" and rows[1].ratio == "1.14" and "20 imputed data sets" in rows[1].work
    # unrecognised output is reported as a failure, never as met
    garbled = run_all.Run(name=name, cmd=["x"], returncode=0, stdout="something else\n")
    assert {r.status for r in target.parse(garbled, "scale")} == {"failed"}


def test_run_all_states_the_reason_for_a_miss():
    run_all = _run_all()
    target = next(t for t in run_all.TARGETS if t.name == "survival")
    out = BENCH_OUTPUT["survival"] + "reason: Efron ties need a second pass over tied risk sets\n"
    run = run_all.Run(name="survival", cmd=["x"], returncode=0, stdout=out)
    run.rows = target.parse(run, "scale")
    run_all.attach_reasons(run, "bench_survival.py")
    assert run.rows[1].status == "missed"
    assert run.rows[1].reason == "Efron ties need a second pass over tied risk sets"
    text = run_all.render([run], quick=False, command="x", started="t", elapsed=1.0, mach={}, vers={})
    assert "## Missed targets" in text and "Efron ties need a second pass" in text
    silent = run_all.Run(name="survival", cmd=["x"], returncode=0, stdout=BENCH_OUTPUT["survival"])
    silent.rows = target.parse(silent, "scale")
    run_all.attach_reasons(silent, "bench_survival.py")
    assert silent.rows[1].reason == "no reason printed by benchmarks/bench_survival.py"


def test_results_md_carries_the_engines_section(tmp_path):
    """RESULTS.md has the engines-at-scale section (issue 17: 10M results in RESULTS.md), and
    refreshing it replaces only that section."""
    run_all = _run_all()
    published = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    assert run_all.ENGINES_HEADING in published
    assert "engines-scaling.png" in published  # the log-log figure of cost growth
    f = tmp_path / "R.md"
    f.write_text("# Benchmark results\n\n## Targets\n\nkept\n\n## Raw output\n\nraw kept\n", encoding="utf-8")
    run_all.refresh_engines_section(f)
    once = f.read_text(encoding="utf-8")
    run_all.refresh_engines_section(f)
    assert f.read_text(encoding="utf-8") == once  # idempotent
    assert once.index("kept") < once.index(run_all.ENGINES_HEADING) < once.index("## Raw output")
    assert "raw kept" in once and "### Cost growth" in once
