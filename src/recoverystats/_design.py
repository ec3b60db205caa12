"""Design matrices for the regression models (internal): one builder for
:func:`~recoverystats.regression.odds_ratios` and :func:`~recoverystats.survival.hazard_ratios`.

Both functions take the same ``exposure=``/``adjust=``/``formula=``/``reference=``
arguments; this module turns them into the same terms, names, reference levels and
error messages. The only difference between the two models is the intercept: the
logistic model has one, the Cox model does not (``intercept=False``; categorical
columns are still coded against a reference level, the baseline hazard absorbs the
constant).

Steps:

* :func:`model_spec` checks the arguments against the data (columns exist, formula
  names only columns, ``reference`` names model columns, not both ``formula`` and
  ``adjust``) and says which columns the model uses;
* :func:`build_design` builds the :class:`Design` on the rows actually analysed (after
  each function's own row exclusions), checking that the exposure and every
  categorical covariate have two or more levels and that no design value is infinite.

Two paths build the same :class:`Design`:

* the fast path (``exposure=``/``adjust=``, or a formula that is only ``a + b + c``)
  encodes columns directly with numpy: numeric and boolean columns as they are,
  text/categorical columns as treatment (dummy) contrasts against a reference level;
* the formula path uses patsy (the statsmodels formula dialect) for anything richer
  (``C()``, interactions, transformations).

Reference level (both paths, both models): ``reference={column: level}`` when given;
otherwise the first category of a pandas ``Categorical``; otherwise, for the coded
columns of the data model (``risk_level``, ``gender``, ``discharge_reason`` ... in
:mod:`recoverystats.schema.spec`), the first code of the code list present in the data
(``low`` for ``risk_level``); otherwise the first sorted value. A numeric column named
in ``reference`` is treated as categorical.

Term naming convention (both paths): a level of a categorical column is written
``column[level]`` (e.g. ``group[peer_mentoring]``), compared with the reference level
given in the table's ``reference`` column; a numeric column keeps its name; an
interaction joins its parts with ``:`` (``group[peer_mentoring]:age``); patsy's
``C(x, ...)`` wrapper and ``T.`` prefix are removed from names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list, check_columns
from recoverystats.errors import DataValidationError, InvalidParameterError

_SIMPLE_RHS = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*(\s*\+\s*[A-Za-z_][A-Za-z0-9_]*)*\s*$")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_QUOTED = re.compile(r"Q\(\s*[\"'](.+?)[\"']\s*\)")
_FORMULA_WORDS = {
    "C", "Q", "I", "np", "log", "exp", "sqrt", "center", "standardize", "scale", "Treatment",
    "Sum", "Diff", "Helmert", "Poly", "bs", "cr", "cc", "te", "reference", "levels", "True",
    "False", "None", "abs",
}


@dataclass
class Term:
    """One model term and the design columns it owns (internal)."""

    name: str
    columns: list[int]
    kind: str  # "intercept" | "numeric" | "categorical" | "other"
    variable: str | None = None
    levels: tuple[Any, ...] = ()  # non-reference levels, in column order
    reference: Any = None


@dataclass
class Design:
    """A numeric design matrix plus what is needed to rebuild it (internal)."""

    X: np.ndarray
    names: list[str]
    terms: list[Term]
    intercept: int | None
    exposure: str | None = None
    exposure_kind: str | None = None  # "categorical" | "binary" | "continuous"
    exposure_levels: tuple[Any, ...] = ()  # reference first
    # fast-path encoders: (column, kind, levels-with-reference-first)
    encoders: list[tuple[str, str, tuple[Any, ...]]] = field(default_factory=list)
    design_info: Any = None  # patsy DesignInfo on the formula path
    base_frame: pd.DataFrame | None = None  # formula path: columns needed for counterfactuals
    formula: str = ""
    # formula path without an intercept (Cox): patsy's intercept column is dropped
    drop_intercept: int | None = None

    # patsy's DesignInfo cannot be pickled: drop it and rebuild it from the formula and
    # the stored columns on unpickling (so results survive pickle / multiprocessing)
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_rebuild"] = state["design_info"] is not None
        state["design_info"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        rebuild = state.pop("_rebuild", False)
        self.__dict__.update(state)
        if rebuild:
            import patsy

            self.design_info = patsy.dmatrix(self.formula, self.base_frame, NA_action="raise").design_info

    @property
    def exposure_terms(self) -> list[Term]:
        return [t for t in self.terms if self.exposure is not None and t.variable == self.exposure]

    # -- rebuilding -------------------------------------------------------------------
    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """The design matrix of new rows, with the fitted levels and reference."""
        if self.design_info is not None:
            import patsy

            X = np.asarray(patsy.build_design_matrices([self.design_info], df)[0], dtype=float)
            return X if self.drop_intercept is None else np.delete(X, self.drop_intercept, axis=1)
        return _encode(df, self.encoders, self.intercept is not None)[0]

    def order(self) -> list[int]:
        """Design columns in table order: the exposure's first, the intercept last.

        The other terms come in the order the formula writes them (``a*b`` expands in
        place to ``a, b, a:b``), not in patsy's, which groups terms by their factors.
        """
        exp_cols = [c for t in self.exposure_terms for c in t.columns]
        icpt = [self.intercept] if self.intercept is not None else []
        return exp_cols + [c for c in self._written_columns() if c not in exp_cols and c not in icpt] + icpt

    def _written_columns(self) -> list[int]:
        """All design columns, grouped by term in the formula's written order (patsy.ModelDesc)."""
        columns = list(range(self.X.shape[1]))
        if self.design_info is None:
            return columns
        import patsy

        try:
            written = patsy.ModelDesc.from_formula(self.formula).rhs_termlist
        except patsy.PatsyError:  # pragma: no cover - the design was built from the same text
            return columns
        drop = self.drop_intercept
        ordered: list[int] = []
        for term in written:
            sl = self.design_info.term_slices.get(term)
            if sl is not None and term.factors:
                ordered += [c - (drop is not None and c > drop) for c in range(sl.start, sl.stop)
                            if c != drop]
        return ordered + [c for c in columns if c not in ordered]

    def column_info(self) -> tuple[list[Any], list[Any]]:
        """Per design column: the data column it comes from and its reference level (or None).

        An interaction names its columns joined by ":" (``age:site``), a transformation
        the column it transforms (``np.log(age)`` -> ``age``); the intercept has None.
        """
        k = self.X.shape[1]
        var: list[Any] = [None] * k
        ref: list[Any] = [None] * k
        for t in self.terms:
            variable = t.variable
            if variable is None and t.kind != "intercept" and self.base_frame is not None:
                used, _ = formula_variables(t.name, self.base_frame)
                variable = ":".join(used) if used else t.name
            for c in t.columns:
                var[c] = variable
                if t.kind == "categorical":
                    ref[c] = t.reference
        return var, ref

    def counterfactual(self, level: Any) -> np.ndarray:
        """The design matrix with every row's exposure set to ``level``."""
        if self.design_info is not None:
            frame = self.base_frame.copy()  # type: ignore[union-attr]
            col = frame[self.exposure]
            if isinstance(col.dtype, pd.CategoricalDtype):
                frame[self.exposure] = pd.Categorical([level] * len(frame), categories=col.cat.categories)
            else:
                frame[self.exposure] = np.repeat(np.asarray([level], dtype=col.dtype), len(frame))
            return self.transform(frame)
        X = self.X.copy()
        for t in self.exposure_terms:
            if t.kind == "categorical":
                for c, lev in zip(t.columns, t.levels, strict=False):
                    X[:, c] = 1.0 if lev == level else 0.0
            else:
                X[:, t.columns[0]] = float(level)
        return X


def _is_numeric(s: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)) and not isinstance(
        s.dtype, pd.CategoricalDtype
    )


def _coded_order(column: str) -> tuple[str, ...]:
    """The code list of a coded participants column of the data model, if any."""
    from recoverystats.schema.spec import TABLES

    spec = TABLES["participants"].column(column)
    return tuple(spec.codes) if spec is not None and spec.codes else ()


def category_levels(s: pd.Series, column: str, reference: Any = None) -> tuple[Any, ...]:
    """Levels of a categorical column present in ``s``, the reference level first."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = set(s.dropna().unique())
        levels = [c for c in s.cat.categories if c in present]
    else:
        levels = sorted(s.dropna().unique(), key=lambda v: (str(type(v)), v))
        codes = _coded_order(column)
        if codes:
            # coded columns of the data model (e.g. risk_level) follow the code list's
            # order, so the first code ("low") is the default reference
            levels = [c for c in codes if c in levels] + [v for v in levels if v not in codes]
    if reference is not None:
        if reference not in levels:
            shown = ", ".join(repr(plain(v)) for v in levels[:20])
            raise InvalidParameterError(
                f"reference: level {reference!r} of column {column!r} does not occur in the rows used; "
                f"levels present: {shown}. Pass one of these as reference={{{column!r}: ...}}."
            )
        levels = [reference] + [v for v in levels if v != reference]
    return tuple(levels)


def _encode(df: pd.DataFrame, encoders, intercept: bool):
    """Fill the design matrix column by column into one preallocated C-ordered array.

    (Stacking per-column blocks costs an extra full copy of the matrix; at 1M x 16 that
    copy is most of the encoding time.)
    """
    n = len(df)
    width = int(intercept) + sum(1 if kind == "numeric" else len(levels) - 1 for _, kind, levels in encoders)
    X = np.empty((n, width), dtype=float)
    pos = 0
    if intercept:
        X[:, 0] = 1.0
        pos = 1
    for col, kind, levels in encoders:
        s = df[col]
        if kind == "numeric":
            X[:, pos] = np.asarray(s, dtype=float)
            pos += 1
        else:
            cat = pd.Categorical(s, categories=list(levels))
            codes = cat.codes
            if (codes < 0).any():
                bad = sorted({str(v) for v in s[codes < 0].unique()})[:10]
                raise InvalidParameterError(
                    f"column {col!r}: level(s) {', '.join(bad)} were not in the fitted data "
                    f"(fitted levels: {', '.join(map(str, levels))})."
                )
            k = len(levels) - 1
            block = X[:, pos:pos + k]
            block[...] = 0.0
            rows = np.flatnonzero(codes > 0)
            block[rows, codes[rows] - 1] = 1.0
            pos += k
    return X, None


def simple_formula_columns(rhs: str) -> list[str] | None:
    """The column names of an additive formula ``a + b + c``; ``None`` if richer."""
    if _SIMPLE_RHS.match(rhs):
        return [t.strip() for t in rhs.split("+")]
    return None


def formula_variables(formula: str, df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(columns of ``df`` a formula uses, identifiers that look like missing columns)."""
    used: list[str] = []
    unknown: list[str] = []
    for q in _QUOTED.findall(formula):
        (used if q in df.columns else unknown).append(q)
    text = _QUOTED.sub(" ", formula)
    # drop string literals (e.g. Treatment('comparison'))
    text = re.sub(r"(['\"]).*?\1", " ", text)
    for m in _IDENT.finditer(text):
        tok = m.group(0)
        end = m.end()
        is_call = text[end:end + 1] == "(" or text[end:].lstrip().startswith("(")
        if tok in df.columns:
            if tok not in used:
                used.append(tok)
        elif not is_call and tok.split(".")[0] not in _FORMULA_WORDS and not tok[0].isdigit():
            unknown.append(tok)
    return used, unknown


def build_fast(
    df: pd.DataFrame,
    columns: list[str],
    *,
    exposure: str | None,
    reference: dict[str, Any],
    intercept: bool = True,
) -> Design:
    """Encode ``columns`` (exposure first) directly, with an intercept unless ``intercept=False``."""
    encoders: list[tuple[str, str, tuple[Any, ...]]] = []
    terms: list[Term] = [Term("Intercept", [0], "intercept")] if intercept else []
    names = ["Intercept"] if intercept else []
    pos = len(names)
    exposure_kind = None
    exposure_levels: tuple[Any, ...] = ()
    for col in columns:
        s = df[col]
        if _is_numeric(s) and col not in reference:
            encoders.append((col, "numeric", ()))
            terms.append(Term(col, [pos], "numeric", col))
            names.append(col)
            pos += 1
            if col == exposure:
                vals = np.unique(np.asarray(s, dtype=float))
                if len(vals) == 2:
                    exposure_kind, exposure_levels = "binary", (float(vals[0]), float(vals[1]))
                else:
                    exposure_kind, exposure_levels = "continuous", ()
                if len(vals) < 2:
                    exposure_kind, exposure_levels = "binary", tuple(float(v) for v in vals)
        else:
            levels = category_levels(s, col, reference.get(col))
            encoders.append((col, "categorical", levels))
            cols = list(range(pos, pos + len(levels) - 1))
            terms.append(Term(col, cols, "categorical", col, tuple(levels[1:]), levels[0]))
            names += [f"{col}[{lev}]" for lev in levels[1:]]
            pos += len(levels) - 1
            if col == exposure:
                exposure_kind, exposure_levels = "categorical", levels
    X, _ = _encode(df, encoders, intercept)
    return Design(X, names, terms, 0 if intercept else None, exposure, exposure_kind, exposure_levels, encoders,
                  formula=" + ".join(columns))


def _clean_name(name: str) -> str:
    name = re.sub(r"C\(\s*([A-Za-z_][\w.]*)[^\[]*?\)\[", r"\1[", name)
    name = name.replace("[T.", "[")
    return name


def build_formula(
    df: pd.DataFrame,
    rhs: str,
    *,
    exposure: str | None,
    reference: dict[str, Any],
    used: list[str],
    intercept: bool = True,
) -> Design:
    """Build the design with patsy; categorical references from ``reference``.

    With ``intercept=False`` the formula is still expanded with patsy's intercept (so
    categorical columns keep reduced-rank, reference-coded dummies) and the intercept
    column is then dropped.
    """
    import patsy

    with_intercept = intercept
    frame = df[used].copy()
    for col in used:
        s = frame[col]
        if col in reference or not _is_numeric(s):
            levels = category_levels(s, col, reference.get(col))
            frame[col] = pd.Categorical(s, categories=list(levels))
    try:
        dm = patsy.dmatrix(rhs, frame, NA_action="raise", return_type="matrix")
    except patsy.PatsyError as exc:
        raise InvalidParameterError(
            f"formula: patsy could not build the design for {rhs!r}: {exc}. Use column names of the data "
            "and patsy syntax, e.g. 'group + age + C(risk_level)'; rows with missing values must be "
            "excluded first."
        ) from None
    except Exception as exc:  # evaluating a transformation, e.g. np.log('text')
        raise InvalidParameterError(
            f"formula: evaluating {rhs!r} failed ({type(exc).__name__}: {exc}). Check the "
            "transformations and the column types."
        ) from None
    info = dm.design_info
    X = np.ascontiguousarray(np.asarray(dm, dtype=float))
    names = [_clean_name(n) for n in info.column_names]
    terms: list[Term] = []
    intercept = None
    for term, sl in info.term_name_slices.items():
        cols = list(range(sl.start, sl.stop))
        tobj = info.terms[list(info.term_names).index(term)]
        factors = [f.name() for f in tobj.factors]
        if not factors:
            terms.append(Term("Intercept", cols, "intercept"))
            intercept = cols[0]
            names[cols[0]] = "Intercept"
            continue
        var = None
        kind = "other"
        levels: tuple[Any, ...] = ()
        ref = None
        if len(factors) == 1:
            fname = factors[0]
            m = re.fullmatch(r"C\(\s*([A-Za-z_][\w.]*)[^)]*\)?\)?", fname)
            base = m.group(1) if m else fname
            if base in frame.columns:
                var = base
                finfo = info.factor_infos[tobj.factors[0]]
                if finfo.type == "categorical":
                    cats = list(finfo.categories)
                    colnames = [info.column_names[c] for c in cols]
                    shown = [re.search(r"\[(?:T\.)?(.*)\]$", c) for c in colnames]
                    labels = [m.group(1) if m else None for m in shown]
                    by_str = {str(c): c for c in cats}
                    if None not in labels and all(lb in by_str for lb in labels) and len(cats) - 1 == len(cols):
                        kind = "categorical"
                        levels = tuple(by_str[lb] for lb in labels)
                        ref = next(c for c in cats if c not in levels)
                elif fname == base:
                    kind = "numeric"
        terms.append(Term(_clean_name(term) if var is None else var, cols, kind, var, levels, ref))
    exposure_kind = None
    exposure_levels: tuple[Any, ...] = ()
    if exposure is not None:
        s = frame[exposure]
        if isinstance(s.dtype, pd.CategoricalDtype):
            exposure_kind, exposure_levels = "categorical", tuple(s.cat.categories)
        else:
            vals = np.unique(np.asarray(s, dtype=float))
            exposure_kind = "binary" if len(vals) <= 2 else "continuous"
            exposure_levels = tuple(float(v) for v in vals) if len(vals) <= 2 else ()
    # a categorical exposure's reference follows the model's coding (e.g. a
    # Treatment('level') inside C()), so g-computation contrasts match the table
    for t in terms:
        if exposure is not None and t.variable == exposure and t.kind == "categorical" and exposure_levels:
            exposure_levels = (t.reference, *[v for v in exposure_levels if v != t.reference])
    drop = None
    if not with_intercept and intercept is None:
        raise InvalidParameterError(
            f"formula: {rhs!r} removes the intercept ('0 +' or '- 1'), which makes patsy code every level of "
            "a categorical column; this model has no intercept of its own, so categorical columns must be "
            "coded against a reference level. Remove the '0 +' / '- 1'."
        )
    if not with_intercept and intercept is not None:
        drop = intercept
        X = np.ascontiguousarray(np.delete(X, drop, axis=1))
        del names[drop]
        terms = [Term(t.name, [c - (c > drop) for c in t.columns], t.kind, t.variable, t.levels, t.reference)
                 for t in terms if t.kind != "intercept"]
        intercept = None
    return Design(
        X, names, terms, intercept, exposure, exposure_kind, exposure_levels,
        design_info=info, base_frame=frame, formula=rhs, drop_intercept=drop,
    )


# -- arguments -> model columns ----------------------------------------------------------

@dataclass(frozen=True)
class ModelSpec:
    """Which columns a model uses and how (internal; from :func:`model_spec`)."""

    used: list[str]  # data columns the right-hand side uses
    rhs: str  # right-hand side (patsy dialect)
    columns: list[str] | None  # additive columns, exposure first; None: formula path
    exposure: str | None
    reference: dict[str, Any]


def check_reference(reference: Any) -> dict[str, Any]:
    """``reference`` must map column names to levels."""
    if reference is None:
        return {}
    if not isinstance(reference, Mapping):
        raise InvalidParameterError(
            "reference must map a column to its reference level, e.g. {'group': 'comparison'}; "
            f"got {reference!r}."
        )
    return dict(reference)


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value (so messages show ``1``, not ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def check_one_column(df: pd.DataFrame, value: Any, param: str) -> None:
    """``param`` (e.g. ``cluster``) must name one column of ``df``."""
    if not isinstance(value, str):
        raise InvalidParameterError(f"{param} must be one column name (str), e.g. 'mentor_id'; got {value!r}.")
    check_columns(df, [value], param)


def singleton_clusters(df: pd.DataFrame, cluster: str) -> tuple[pd.DataFrame, str | None]:
    """Give rows with no ``cluster`` value a cluster of their own.

    Participants never matched with a mentor (e.g. the whole comparison arm) have no
    ``mentor_id``; in a partially nested design each of them is its own cluster (the
    usual convention for individually randomised trials with clustering in one arm).
    Returns the frame (a copy only when something was filled) and a note, or ``None``.
    """
    values = df[cluster]
    missing = values.isna().to_numpy()
    if not missing.any():
        return df, None
    n = int(missing.sum())
    filled = values.astype(object).copy()
    filled[missing] = [f"__own_cluster_{i}" for i in np.flatnonzero(missing)]
    out = df.copy()
    out[cluster] = filled
    note = (f"{n} rows with no {cluster!r} (e.g. never matched with a mentor) are each treated as their own "
            "cluster.")
    return out, note


def model_spec(
    df: pd.DataFrame,
    *,
    func: str,
    exposure: str | None = None,
    adjust: str | Iterable[str] = (),
    formula: str | None = None,
    rhs: str | None = None,
    reference: Any = None,
) -> ModelSpec:
    """Check ``exposure``/``adjust``/``formula``/``reference`` against ``df``.

    ``formula`` is the text the user gave (quoted in messages) and ``rhs`` its
    right-hand side; ``func`` names the calling function in messages.
    """
    ref = check_reference(reference)
    adjust_cols = as_column_list(adjust)
    if exposure is not None and not isinstance(exposure, str):
        raise InvalidParameterError(f"exposure must be one column name (str), e.g. 'group'; got {exposure!r}.")
    if rhs is not None:
        if adjust_cols:
            raise InvalidParameterError(
                "adjust: give either formula= or exposure=/adjust=, not both: put the covariates in the "
                "formula (exposure= may accompany formula= only to say which term to list first); "
                f"got formula={formula!r} and adjust={adjust_cols!r}."
            )
        used, unknown = formula_variables(rhs, df)
        if unknown:
            raise InvalidParameterError(
                f"formula: column(s) {', '.join(repr(u) for u in unknown)} not found in the data, so "
                f"formula {formula!r} could not be evaluated. Available columns: "
                f"{', '.join(map(str, list(df.columns)[:30]))}."
            )
        if not used:
            raise InvalidParameterError(
                f"formula: {formula!r} names no column of the data; give covariates, e.g. 'group + age'."
            )
        columns = simple_formula_columns(rhs)
        if exposure is not None:
            if exposure not in used:
                raise InvalidParameterError(
                    f"exposure={exposure!r} does not appear in the formula {formula!r}; add it to the formula."
                )
            if columns is not None:
                columns = [exposure] + [c for c in columns if c != exposure]
    else:
        if exposure is None and not adjust_cols:
            raise InvalidParameterError(
                f"{func} needs covariates: give exposure= (e.g. 'group') and/or adjust=[...], or formula=; "
                "a model needs at least one covariate."
            )
        if exposure is not None:
            check_columns(df, [exposure], "exposure")
        check_columns(df, adjust_cols, "adjust")
        twice = sorted({c for c in adjust_cols if adjust_cols.count(c) > 1})
        if twice:
            raise InvalidParameterError(
                f"adjust: column(s) {', '.join(map(repr, twice))} listed more than once (got {adjust_cols!r}); "
                "list each covariate once."
            )
        columns = ([exposure] if exposure else []) + [c for c in adjust_cols if c != exposure]
        used = list(columns)
        rhs = " + ".join(columns)
    for col in ref:
        if col not in used:
            raise InvalidParameterError(
                f"reference: column {col!r} is not in the model (model columns: {', '.join(used)}); "
                "name a column given in exposure=, adjust= or the formula."
            )
    return ModelSpec(used, rhs, columns, exposure, ref)


def build_design(data: pd.DataFrame, spec: ModelSpec, *, intercept: bool = True) -> Design:
    """The :class:`Design` of ``spec`` on the rows analysed (complete cases of ``spec.used``).

    Raises ``DataValidationError`` when the exposure or a categorical covariate has a
    single value among these rows (it would otherwise drop out of the model silently),
    or when a design value is infinite or undefined.
    """
    n = len(data)
    if spec.exposure is not None:
        values = pd.unique(data[spec.exposure])
        if len(values) < 2:
            shown = f"a single value ({plain(values[0])!r})" if len(values) else "no values"
            raise DataValidationError(
                f"exposure: column {spec.exposure!r} has {shown} among the {n} rows used; "
                "a comparison needs at least two groups (check the filter or the group coding)."
            )
    for col in spec.used:
        s = data[col]
        if col != spec.exposure and (col in spec.reference or not _is_numeric(s)):
            values = pd.unique(s)
            if len(values) < 2:
                raise DataValidationError(
                    f"covariate {col!r} has a single level ({plain(values[0])!r}) among the {n} rows used; "
                    "it carries no information -- remove it from the model."
                )
    if spec.columns is not None:
        design = build_fast(data, spec.columns, exposure=spec.exposure, reference=spec.reference,
                            intercept=intercept)
    else:
        design = build_formula(data, spec.rhs, exposure=spec.exposure, reference=spec.reference,
                               used=spec.used, intercept=intercept)
    X = design.X
    if X.shape[1]:
        finite = np.isfinite(X).all(axis=0)
        if not finite.all():
            bad = [design.names[c] for c in np.flatnonzero(~finite)]
            raise DataValidationError(
                f"covariates: design column(s) {', '.join(map(repr, bad))} contain infinite or undefined "
                "values (e.g. log of 0, or inf in the data); fix the transformation or the values."
            )
    return design


def collinear_sets(XtX: np.ndarray, names: list[str]) -> list[list[str]]:
    """Sets of design columns that are exact linear combinations of each other.

    ``XtX`` is the cross-product matrix (with the intercept column for a model with an
    intercept, or of the centred columns for one without).
    """
    d = np.sqrt(np.diag(XtX))
    d = np.where(d > 0, d, 1.0)
    R = XtX / np.outer(d, d)
    lam, V = np.linalg.eigh(R)
    sets = []
    for i in np.flatnonzero(lam < 1e-10 * max(1.0, lam[-1])):
        v = V[:, i]
        idx = np.flatnonzero(np.abs(v) > 1e-4 * np.max(np.abs(v)))
        sets.append([names[j] for j in idx])
    return sets
