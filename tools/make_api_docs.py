"""Generate ``docs/api.md`` (the API reference) from the package's docstrings.

Usage::

    python tools/make_api_docs.py           # write docs/api.md
    python tools/make_api_docs.py --check   # exit 1 if docs/api.md is out of date

Every public name — the top-level ``recoverystats`` API and each subpackage's ``__all__``
— gets its signature and its numpydoc docstring converted to Markdown (section headers
become bold labels, parameter lists become bullet lists, ``>>>`` examples become
``python`` code blocks). Result classes list their public methods and properties, and the
result objects' own classes (which are not in any ``__all__``) get a section of their own.
``tests/test_docs.py`` fails when the committed file differs from what this script writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"

#: (module, heading, one-line description) in the order of the pipeline.
SECTIONS: list[tuple[str, str]] = [
    ("recoverystats.io", "Loading program data"),
    ("recoverystats.engines.program", "Programs held by DuckDB or Spark (read_program(engine=...))"),
    ("recoverystats.datasets", "Bundled datasets and the simulator"),
    ("recoverystats.measures", "Outcome measures"),
    ("recoverystats.engines.measures", "Measures on DuckDB and Spark (Ibis definitions, sufficient statistics)"),
    ("recoverystats.rates", "Rates, comparisons, Table 1, trends"),
    ("recoverystats.regression", "Adjusted odds ratios"),
    ("recoverystats.survival", "Time-to-event analysis"),
    ("recoverystats.causal", "Comparison-group (non-randomised) evaluation"),
    ("recoverystats.missing", "Missing data: imputation, Rubin's rules, attrition, sensitivity"),
    ("recoverystats.design", "Evaluation design: power, sample size, detectable effects"),
    ("recoverystats.synthesis", "Synthesis: pooling across sites, effect modification, interrupted time series"),
    ("recoverystats.report", "The quarterly report"),
    ("recoverystats.privacy", "Privacy: small-cell suppression and output scan"),
    ("recoverystats.schema", "The data model"),
    ("recoverystats.results", "Display and rendering"),
]

#: Result classes are returned by the functions above rather than imported by users; they
#: are documented in their own section.
RESULT_MODULES = ["recoverystats.results.rates", "recoverystats.results.regression",
                  "recoverystats.results.survival", "recoverystats.results.causal",
                  "recoverystats.results.pooling", "recoverystats.results.attrition",
                  "recoverystats.results.synthesis",
                  "recoverystats.results.design"]

SECTION_HEADERS = {
    "Parameters", "Returns", "Yields", "Raises", "Warns", "Other Parameters", "Attributes",
    "Methods", "See Also", "Notes", "References", "Examples", "Warnings",
}
LIST_SECTIONS = {"Parameters", "Returns", "Yields", "Raises", "Warns", "Other Parameters", "Attributes"}


# ---------------------------------------------------------------------------------------
def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def docstring_to_markdown(doc: str | None, *, level: int = 4) -> str:
    """Convert a numpydoc docstring to Markdown."""
    if not doc:
        return "*(no docstring)*"
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    section = ""
    i = 0
    in_code = False
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        # numpydoc section header: "Title" underlined by dashes
        if (line.strip() in SECTION_HEADERS and re.fullmatch(r"\s*-{3,}\s*", nxt)
                and not in_code):
            section = line.strip()
            out += ["", f"**{section}**", ""]
            i += 2
            continue
        # doctest examples -> fenced python blocks (prompt lines and their output)
        if line.lstrip().startswith(">>>"):
            if not in_code:
                out.append("```python")
                in_code = True
            out.append(line.strip())
            i += 1
            continue
        if in_code:
            if line.strip() == "":
                out += ["```", ""]
                in_code = False
            else:
                out.append(line.strip())
            i += 1
            continue
        if section in LIST_SECTIONS and line and not line.startswith(" "):
            # "name : type" (Parameters) or "Type" (Returns / Raises)
            name, _, typ = line.partition(" : ")
            if typ:
                out.append(f"- `{name.strip()}` : {typ.strip()}")
            else:
                out.append(f"- `{line.strip()}`")
            i += 1
            continue
        if section in LIST_SECTIONS and line.startswith(" "):
            out.append("  " + line.strip())
            i += 1
            continue
        out.append(line)
        i += 1
    if in_code:
        out.append("```")
    text = "\n".join(out)
    text = _inline_rest(text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _inline_rest(text: str) -> str:
    """reST inline markup -> Markdown, outside fenced code blocks."""
    parts = re.split(r"(```python\n.*?```)", text, flags=re.S)
    for i in range(0, len(parts), 2):
        t = parts[i]
        t = re.sub(r":(?:func|class|meth|mod|attr|data|obj|exc):`~?([^`]+)`",
                   lambda m: f"`{m.group(1).split('.')[-1] if m.group(0).count('~') else m.group(1)}`", t)
        t = re.sub(r"``([^`]+)``", r"`\1`", t)
        parts[i] = t
    return "".join(parts)


def first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ").strip()


def _param(p: inspect.Parameter) -> str:
    text = p.name
    if p.kind is inspect.Parameter.VAR_POSITIONAL:
        text = "*" + text
    elif p.kind is inspect.Parameter.VAR_KEYWORD:
        text = "**" + text
    if p.annotation is not inspect.Parameter.empty:
        text += f": {_ann(p.annotation)}"
    if p.default is not inspect.Parameter.empty:
        default = "<factory>" if type(p.default).__name__ == "_HAS_DEFAULT_FACTORY_CLASS" else repr(p.default)
        default = re.sub(r" at 0x[0-9a-f]+", "", default)
        text += f" = {default}"
    return text


def signature(name: str, obj: Any) -> str:
    """``name(a: int, *, b: str = 'x') -> T`` (wrapped one parameter a line when long)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name}(...)"
    raw = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    params: list[str] = []
    star_done = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in raw)
    for p in raw:
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not star_done:
            params.append("*")
            star_done = True
        params.append(_param(p))
    ret = "" if sig.return_annotation is inspect.Signature.empty else f" -> {_ann(sig.return_annotation)}"
    one_line = f"{name}({', '.join(params)}){ret}"
    if len(one_line) <= 92:
        return one_line
    body = ",\n".join(f"    {p}" for p in params)
    return f"{name}(\n{body},\n){ret}"


def _ann(a: Any) -> str:
    return a if isinstance(a, str) else getattr(a, "__name__", repr(a))


def _is_public_member(cls: type, name: str) -> bool:
    return not name.startswith("_")


def class_members(cls: type) -> list[tuple[str, Any, str]]:
    """(name, object, kind) of the public methods and properties defined on ``cls`` or its bases
    inside recoverystats (not object/pandas internals)."""
    out = []
    seen = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("recoverystats") or klass is object:
            continue
        for name, value in vars(klass).items():
            if name in seen or not _is_public_member(cls, name):
                continue
            seen.add(name)
            if isinstance(value, property):
                out.append((name, value, "property"))
            elif isinstance(value, (staticmethod, classmethod)):
                out.append((name, value.__func__, "method"))
            elif inspect.isfunction(value):
                out.append((name, value, "method"))
    return sorted(out, key=lambda t: t[0])


def document(name: str, obj: Any, *, qual: str, level: int = 3) -> list[str]:
    h = "#" * level
    lines: list[str] = []
    if inspect.isclass(obj):
        lines += [f"{h} `{name}`", "", f"*class* `{qual}`", ""]
        if dataclasses.is_dataclass(obj):
            lines += ["```python", signature(name, obj), "```", ""]
        lines += [docstring_to_markdown(obj.__doc__), ""]
        members = class_members(obj)
        if members:
            lines += [f"{'#' * (level + 1)} `{name}` methods and properties", ""]
            for mname, mobj, kind in members:
                if kind == "property":
                    lines.append(f"- `{mname}` *(property)* — {first_paragraph(mobj.__doc__) or '—'}")
                else:
                    one = re.sub(r"\(\n\s+", "(", signature(mname, mobj))
                    one = re.sub(r",\n\)", ")", one)
                    one = re.sub(r",\n\s+", ", ", one)
                    lines.append(f"- `{one}` — {first_paragraph(mobj.__doc__) or '—'}")
            lines.append("")
            # full docstrings for methods with more than one paragraph (the substantial ones)
            for mname, mobj, kind in members:
                if kind == "method" and mobj.__doc__ and "\n\n" in inspect.cleandoc(mobj.__doc__):
                    if mobj.__qualname__.split(".")[0] != obj.__name__:
                        continue  # inherited: documented on the class that defines it
                    lines += [f"{'#' * (level + 1)} `{name}.{mname}`", "", "```python",
                              signature(mname, mobj), "```", "", docstring_to_markdown(mobj.__doc__), ""]
    elif callable(obj):
        lines += [f"{h} `{name}`", "", "```python", signature(name, obj), "```", "",
                  f"`{qual}`", "", docstring_to_markdown(obj.__doc__), ""]
    else:
        text = repr(obj)
        if len(text) > 300:
            text = text[:300] + " …"
        lines += [f"{h} `{name}`", "", f"Constant `{qual}`:", "", "```python", text, "```", ""]
    return lines


def _qualname(obj: Any, module: str, name: str) -> str:
    mod = getattr(obj, "__module__", None) if (inspect.isclass(obj) or callable(obj)) else None
    return f"{mod or module}.{name}"


def render() -> str:
    import recoverystats as rs

    out: list[str] = [
        "# API reference",
        "",
        "<!-- Generated by tools/make_api_docs.py from the docstrings; do not edit by hand. -->",
        "",
        "Generated from the package's docstrings by `python tools/make_api_docs.py` "
        "(a test fails when this file is out of date). For the ideas behind the functions see "
        "[getting started](getting-started.md), the [data model](data-model.md), the "
        "[measure definitions](measures.md) and the methods pages linked from the "
        "[documentation index](index.md).",
        "",
        "## Contents",
        "",
        "- [Top-level names](#top-level-names)",
    ]
    for module, title in SECTIONS:
        out.append(f"- [{title} — `{module}`](#{slug(f'{title} — `{module}`')})")
    out += ["- [Result objects](#result-objects)", "- [Errors and warnings](#errors-and-warnings)", ""]

    # top-level map
    out += ["## Top-level names", "",
            "`import recoverystats as rs` gives these names (imported lazily on first use, so "
            "`import recoverystats` stays fast); each is documented under its subpackage.", "",
            "| name | defined in | summary |", "|---|---|---|"]
    for name in sorted(rs._LAZY):
        obj = getattr(rs, name)
        out.append(f"| `rs.{name}` | `{rs._LAZY[name]}` | {first_paragraph(obj.__doc__)} |")
    out.append("")

    for module, title in SECTIONS:
        mod = importlib.import_module(module)
        out += [f"## {title} — `{module}`", "", docstring_to_markdown(mod.__doc__), ""]
        names = list(getattr(mod, "__all__", []))
        # top-level names defined in a module of this subpackage but not in its __all__
        names += sorted(n for n, m in rs._LAZY.items() if m.startswith(module) and n not in names)
        for name in names:
            obj = getattr(rs, name) if name in rs._LAZY and not hasattr(mod, name) else getattr(mod, name)
            out += document(name, obj, qual=_qualname(obj, module, name))
    # result classes
    from recoverystats.results.base import ResultMixin

    out += ["## Result objects", "",
            "Every analysis returns a frozen result object. All of them share "
            "`ResultMixin`: `.table` (a copy of the tidy, unrounded DataFrame), `conf_level`, "
            "`method`, `n_used`, `n_excluded`, `notes`, `_repr_html_()` (the same renderer "
            "as the report), `to_dict()` (JSON-safe) and `to_markdown()`; most also "
            "`plot(ax=None)`.", ""]
    for module in RESULT_MODULES:
        mod = importlib.import_module(module)
        classes = [(n, c) for n, c in vars(mod).items()
                   if inspect.isclass(c) and issubclass(c, ResultMixin) and c.__module__ == module
                   and not n.startswith("_")]
        for name, cls in sorted(classes):
            out += document(name, cls, qual=f"{module}.{name}")
    # errors
    out += ["## Errors and warnings", "", docstring_to_markdown(importlib.import_module("recoverystats.errors").__doc__), ""]
    from recoverystats import errors

    for name in ["RecoveryStatsError", "DataValidationError", "InvalidParameterError", "EstimationError",
                 "RecoveryStatsWarning", "SmallSampleWarning"]:
        cls = getattr(errors, name)
        bases = ", ".join(b.__name__ for b in cls.__bases__)
        out += [f"### `{name}`", "", f"*class* `recoverystats.{name}({bases})`", "",
                docstring_to_markdown(cls.__doc__), ""]
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is out of date")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    text = render()
    path = Path(args.out)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            sys.stderr.write(f"{path} is out of date; run `python tools/make_api_docs.py`\n")
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {path} ({len(text.splitlines())} lines)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
