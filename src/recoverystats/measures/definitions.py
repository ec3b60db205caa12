"""The measure definitions, written once.

Each measure's definition text lives here and only here: the measures put it in
``df.attrs["measure"]``, the report prints it in its methods section, and
``docs/measures.md`` carries the same text (a test checks the two agree; regenerate the
block with :func:`definitions_markdown`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MeasureDefinition:
    """One outcome measure: its name, title, definition and what it needs."""

    name: str
    title: str
    #: The definition, in plain language, exactly as reports print it.
    definition: str
    #: Tables the measure reads (``participants`` is always needed).
    tables: tuple[str, ...]
    #: The measure's outcome columns.
    outcome: tuple[str, ...]


_COMMON = (
    "Day numbers count calendar days from the index date (day 0). A fixed window of W "
    "days is observed when its last day (index + W) is on or before as_of; fixed-window "
    "outcomes are reported only for those participants (others: NaN, eligible=False, "
    "exclusion_reason='window not complete'), while time_days/event use everyone enrolled "
    "by as_of. Participants enrolled after as_of are kept with exclusion_reason="
    "'enrolled after as_of'. Events after as_of and events on or before the index date "
    "never count; for measures indexed on enrollment, events flagged before_enrollment "
    "(history) never count either. Recidivism is indexed on release, so a justice event "
    "after release counts even when it precedes enrollment. When several qualifying "
    "events fall on the first day, the type reported (relapse_type, recidivism_type, "
    "technical_violation_type) is the first in alphabetical order, so results do not "
    "depend on the order of the rows (which DuckDB and Spark do not keep)."
)

DEFINITIONS: dict[str, MeasureDefinition] = {
    d.name: d
    for d in (
        MeasureDefinition(
            name="retention",
            title="Program retention",
            definition=(
                "Retained at k days: the participant is still enrolled k days after enrollment, "
                "i.e. length of stay (discharge_date - enrollment_date, or as_of - enrollment_date "
                "while enrolled) is at least k days, so a discharge on day k itself counts as retained. "
                "With completion_counts=True a completed discharge (discharge_reason in "
                "COMPLETION_REASONS) before day k also counts as retained; with False it does not. "
                "retained_k is observed (eligible_k) when enrollment_date + k <= as_of; eligible is "
                "eligible_k for the longest k. Time to event: event=1 for a discharge that is not a "
                "completion (dropout: withdrew, lost contact, incarcerated, died, ...), time_days = days "
                "from enrollment to that discharge; completions are censored at their discharge date, "
                "everyone else at as_of. Discharge dates after as_of are ignored (still enrolled at as_of)."
            ),
            tables=("participants",),
            outcome=("retained_<k>",),
        ),
        MeasureDefinition(
            name="relapse",
            title="Relapse",
            definition=(
                "First relapse after enrollment: the first event of type relapse or substance_use, "
                "or a drug_screen with result 'positive', dated strictly after enrollment_date (a "
                "positive screen on the enrollment day is a baseline finding). Observation ends at "
                "the earliest of: followup_end_date when given, otherwise discharge_date (relapse is "
                "observed by the program only while it follows the participant); death; as_of. "
                "Relapses after the end of observation are not counted. time_days = days from "
                "enrollment to the first relapse (event=1) or to the end of observation (event=0); "
                "end_reason says which. With window_days=W, relapsed = 1 if the first relapse falls "
                "on day 1..W, 0 otherwise, and is reported (eligible) only when the whole window "
                "was observed: enrollment_date + W <= as_of and observation did not end before day W "
                "for a reason other than death (a death before day W without relapse is a known "
                "outcome, relapsed = 0, flagged died_in_window). Counting relapses in incomplete "
                "windows while dropping non-relapsers would bias the rate upward, so incompletely "
                "observed participants are excluded whatever happened; use the Kaplan-Meier "
                "estimate 1 - S(W) from time_days/event to use their partial follow-up."
            ),
            tables=("participants", "events"),
            outcome=("relapsed",),
        ),
        MeasureDefinition(
            name="recidivism",
            title="Recidivism",
            definition=(
                "First qualifying justice event strictly after the index date. The index date is "
                "release_date, or enrollment_date when release_date is missing (index_source says "
                "which; missing_release='exclude' makes those participants ineligible with "
                "exclusion_reason='no release date'). Levels are nested: rearrest counts arrest, "
                "conviction or incarceration events; reconviction counts conviction or incarceration; "
                "reincarceration counts incarceration. Technical violations (parole_violation, "
                "probation_violation) never count as recidivism and are reported separately "
                "(technical_violation, technical_violation_days). Observation ends at the earliest "
                "of followup_end_date (when given), death and as_of; program discharge does not end "
                "it (justice records are observed after discharge). Death is a competing event: "
                "event_type = 1 recidivism, 2 death before recidivism, 0 censored; event = 1 only "
                "for recidivism; time_days = days from index to the first of these. With window_days "
                "= W, recidivated = 1 if the first qualifying event is on day 1..W, 0 otherwise, "
                "reported when index + W <= as_of and follow-up did not end before day W; a death "
                "before day W without recidivism is a known outcome (recidivated = 0, "
                "died_in_window), so the eligible proportion estimates the cumulative incidence of "
                "recidivism at W in the presence of death."
            ),
            tables=("participants", "events"),
            outcome=("recidivated",),
        ),
        MeasureDefinition(
            name="followup",
            title="GPRA 6-month follow-up",
            definition=(
                "The 6-month follow-up interview (assessments timepoint followup_6m) is due in the "
                "window of days window[0]..window[1] (default 150..240, about 5-8 months) after the "
                "index date: the intake assessment date, or enrollment_date when there is no intake "
                "assessment. With due_rule='window_closed' (default) a follow-up is due once the "
                "window has closed by as_of (index + window[1] <= as_of), so open windows neither "
                "help nor hurt the rate; with due_rule='window_opened' it is due once the window has "
                "opened (index + window[0] <= as_of), which counts open windows without an interview "
                "as missed. Participants who died before their window closed are not due "
                "(exclusion_reason='died before follow-up window closed'). completed_in_window = 1 "
                "when the interview date is on day window[0]..window[1]; completed_outside_window = "
                "1 when it was done outside the window. Follow-up rate = completed in window / due, "
                "compared with the target (default 0.80)."
            ),
            tables=("participants", "assessments", "events"),
            outcome=("completed_in_window",),
        ),
        MeasureDefinition(
            name="noms_change",
            title="NOMs change, intake to 6-month follow-up",
            definition=(
                "Matched pairs: participants with both an intake and a followup_6m assessment (on "
                "or before as_of; with window given, only follow-ups on day window[0]..window[1] "
                "after intake) and a non-missing answer to the item at both. Items (past 30 days): "
                "abstinence = not any_use_30d; no_arrest = not arrested_30d; employed_or_school; "
                "stable_housing; social_support. For each item: n_pairs, % positive at intake and at "
                "follow-up, change in percentage points (follow-up - intake), and McNemar's test on "
                "the discordant pairs b (yes at intake, no at follow-up) and c (no then yes): exact "
                "two-sided binomial p = min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c, 1/2), when "
                "b + c < 25, else the chi-square statistic (|b - c| - 1)^2 / (b + c) on 1 df "
                "(continuity corrected), as statsmodels mcnemar(exact=..., correction=True)."
            ),
            tables=("participants", "assessments"),
            outcome=("change_pp",),
        ),
        MeasureDefinition(
            name="engagement",
            title="Mentor engagement",
            definition=(
                "Contacts in the first first_days days (days 0..first_days-1 from enrollment, the "
                "enrollment day included) and the rate per 30 days = contacts / first_days * 30, "
                "reported (eligible) when the whole period was observed: enrollment_date + "
                "first_days - 1 <= as_of. engaged = 1 when those contacts number at least "
                "engaged_min_contacts. contacts_total and minutes_total count every contact from "
                "enrollment to as_of. Time to first match: event = 1 when the first match_date is on "
                "or before as_of (matched), time_days = days from enrollment to it (0 when matched "
                "before enrollment, e.g. pre-release); never-matched participants are censored at "
                "the earliest of discharge_date, death and as_of."
            ),
            tables=("participants", "contacts", "matches"),
            outcome=("contacts_per_30d", "engaged", "matched"),
        ),
    )
}

#: The rules every measure shares (also printed in ``docs/measures.md``).
COMMON_RULES: str = _COMMON


def definitions_markdown() -> str:
    """The definitions as the Markdown block kept in ``docs/measures.md``."""
    lines = ["<!-- definitions: generated by recoverystats.measures.definitions_markdown() -->", "",
             "### Rules shared by every measure", "", COMMON_RULES, ""]
    for d in DEFINITIONS.values():
        lines += [f"### `{d.name}` — {d.title}", "", d.definition, "",
                  f"Tables: {', '.join(d.tables)}. Outcome columns: {', '.join(d.outcome)}.", ""]
    lines.append("<!-- end definitions -->")
    return "\n".join(lines)
