"""Report section (opt-in): the group effect within subgroups ("for whom does it work?").

For each column listed in the report config's ``[subgroups] modifiers``: the odds ratio of
the headline outcome (the first recidivism level), program group vs reference, within each
level of the modifier, from one logistic model with a group-by-modifier interaction
(:func:`recoverystats.effect_modification`), and the interaction test.

Privacy: the per-level counts (participants, events, and the same in the program group;
the reference group's counts and all non-event counts are protected hidden differences)
go through the joint suppression with one total row per modifier, linked to the outcome
table's totals when it counts the same participants. A level's odds ratio, CI and p-value
are suppressed with any of its counts; the interaction test uses every level, so it is
registered as a statistic derived from all the modifier's counts and suppressed with any
of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recoverystats.errors import RecoveryStatsError
from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import TOTAL, _figure
from recoverystats.report.sections.sites import COUNTS, HIDDEN, compared_groups, headline

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]

_TEST_WORDS = {"likelihood ratio": "a likelihood-ratio test",
               "likelihood ratio (penalised, Firth)": "a penalised likelihood-ratio test",
               "Wald (robust)": "a Wald test with standard errors that allow for participants sharing a mentor"}


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section] | None:
    """Register the per-subgroup table; return the composer (None: no subgroup could be estimated).

    Raises ``InvalidParameterError`` when the section is on but ``[subgroups] modifiers`` is empty.
    """
    from recoverystats.synthesis import effect_modification

    cfg = ctx.cfg
    modifiers = list(getattr(cfg, "subgroup_modifiers", ()) or ())
    if not modifiers:
        from recoverystats.errors import InvalidParameterError

        raise InvalidParameterError(
            "config [sections] subgroups = true needs the subgroup columns: add [subgroups] modifiers = "
            '["gender", "risk_level"] (participant columns), or switch the section off.'
        )
    key, col, label, d = headline(ctx)
    ref, exposed = compared_groups(ctx)
    d = d[d["_group"].isin([ref, exposed])].copy()
    gcol = cfg.group_column
    d[gcol] = d["_group"]
    full = ctx.measures[key]
    n_all = int((full["eligible"].astype(bool) & full[col].notna()).sum())
    cluster = cfg.cluster if cfg.cluster and cfg.cluster in d.columns and d[cfg.cluster].notna().any() else None
    parts, ids, derived, notes, tests = [], {}, [], [], {}
    offset = 0
    for mod in modifiers:
        if mod not in d.columns:
            notes.append(f"Subgroup column {mod!r} is not in the outcome data; skipped.")
            continue
        adjust = [a for a in cfg.adjust if a != mod and a in d.columns and d[a].notna().any()]
        try:
            res = effect_modification(d, outcome=col, exposure=gcol, modifier=mod, adjust=adjust,
                                      reference={gcol: ref}, cluster=cluster, conf_level=cfg.conf_level)
        except RecoveryStatsError as exc:
            notes.append(f"{ctx.labels.variable(mod)}: not estimated ({exc}).")
            continue
        t = res.table
        rows = pd.DataFrame({
            "modifier": mod, "level": t["level"].astype(str),
            **{c: t[c].astype(float) for c in COUNTS},
            "estimate": t["estimate"], "ci_lower": t["ci_lower"], "ci_upper": t["ci_upper"], "p_value": t["p_value"],
            "p_interaction": np.nan,
        })
        inter = res.interaction.iloc[0]
        total = {"modifier": mod, "level": TOTAL, **{c: float(t[c].sum()) for c in COUNTS},
                 "estimate": np.nan, "ci_lower": np.nan, "ci_upper": np.nan, "p_value": np.nan,
                 "p_interaction": float(inter["p_value"])}
        block = pd.concat([rows, pd.DataFrame([total])], ignore_index=True)
        i_tot = offset + len(block) - 1
        if int(total["n"]) == n_all:
            ids[(i_tot, "n")] = (f"out|{key}|{TOTAL}|n", f"elig|{TOTAL}|{n_all}")
            ids[(i_tot, "events")] = f"out|{key}|{TOTAL}|events"
        derived.append({"row": i_tot, "column": "p_interaction", "statistic": "interaction_test",
                        "inputs": [[offset + j, c] for j in range(len(rows)) for c in COUNTS], "digits": None,
                        "params": {"test": str(inter["test"])}})
        tests[mod] = (str(inter["test"]), int(inter["df"]), res.n_subgroups)
        parts.append(block)
        offset += len(block)
    if not parts:
        ctx.warnings.append("Effect by subgroup: no subgroup could be estimated (" + " ".join(notes) + ")")
        return None
    table = pd.concat(parts, ignore_index=True)
    dep = list(COUNTS)
    ctx.registry.add(PendingTable(
        key="subgroup_effects", sheet="Effect by subgroup",
        title=f"Odds ratio of {label} by subgroup (program vs reference)", raw=table, count_columns=COUNTS,
        margins={"total_row": {"level": TOTAL}, "by": ("modifier",),
                 "complements": [("n", "events"), ("n_exposed", "events_exposed")], "hidden": HIDDEN},
        dependent={"estimate": dep, "ci_lower": dep, "ci_upper": dep, "p_value": dep},
        derived=derived, ids=ids,
        columns=("modifier", "level", "n", "events", "estimate", "ci_lower", "ci_upper", "p_value", "p_interaction"),
        labels={"modifier": "Subgroup", "level": "Level", "n": "Participants", "events": "Events", "estimate": "OR",
                "ci_lower": "CI lower", "ci_upper": "CI upper", "p_value": "p", "p_interaction": "Interaction p"},
        measure={"definition": f"Odds ratio of {label}, {exposed} vs {ref}, within each level of the subgroup "
                               "column, from one logistic model with a group x subgroup interaction "
                               "(synthesis.effect_modification); interaction p: test that the odds ratio is the "
                               "same in every level.", "as_of": ctx.as_of.date().isoformat(),
                 "numerator": col, "denominator": "eligible"},
    ))
    n_tests = sum(v[2] for v in tests.values())

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.synthesis import plot_effect_modification_table

        b = blocks["subgroup_effects"]
        kinds = sorted({v[0] for v in tests.values()})
        paras = (
            f"The odds of {label} in the {ctx.labels.code(exposed, field='group')} group relative to the "
            f"{ctx.labels.code(ref, field='group')} group within subgroups of participants, each from one model "
            "with an interaction between group and the subgroup (adjusted for the report's covariates). The "
            "interaction p-value tests whether the effect differs between the subgroup's levels "
            f"({' / '.join(_TEST_WORDS.get(k, k) for k in kinds)}).",
            f"{n_tests} subgroup estimates in {len(tests)} subgroup variable(s) are shown. They are exploratory: "
            "per-subgroup p-values are not adjusted for multiple comparisons, and with many subgroups some will "
            "look different by chance alone. Only the interaction test speaks to a difference between subgroups, "
            "and a subgroup finding needs confirmation in a study planned for it.",
        )
        out: list[Any] = [TextBlock(paragraphs=paras, bullets=tuple(dict.fromkeys(notes)))]
        rows = b.data[b.data["level"] != TOTAL]
        labels = [f"{ctx.labels.variable(m).split(' (')[0]}: {ctx.labels.code(lv, field=m)}"
                  for m, lv in zip(rows["modifier"], rows["level"], strict=True)]
        out.append(_figure("subgroup_forest", "Effect by subgroup", lambda ax: plot_effect_modification_table(
            rows, ax=ax, labels=labels, as_of=ctx.as_of), figsize=(7.5, max(3.0, 0.4 * len(rows) + 1.4)),
            sources=("subgroup_effects",)))
        out.append(b)
        return Section("subgroups", "Effect by subgroup", tuple(out))

    return section
