"""The two real datasets shipped with the package (UIS and Rossi)."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.io.program import ProgramData

__all__ = [
    "load_uis",
    "load_rossi",
    "rossi_as_program",
    "ROSSI_RELEASE_DATE",
    "ROSSI_FOLLOWUP_DAYS",
]

#: The common release date given to every man in :func:`rossi_as_program` (the study
#: released its participants during 1971-72; the exact dates are not in the data).
ROSSI_RELEASE_DATE = pd.Timestamp("1971-07-01")
#: Follow-up length in :func:`rossi_as_program`: 52 weeks plus one day (see its Notes).
ROSSI_FOLLOWUP_DAYS = 365


def _read(name: str) -> pd.DataFrame:
    with resources.files("recoverystats.datasets").joinpath("data", name).open("rb") as fh:
        return pd.read_csv(fh)


def load_uis() -> pd.DataFrame:
    """The UIS drug-treatment study: time to return to drug use, 575 participants x 18 columns.

    Returns
    -------
    pandas.DataFrame
        575 rows (complete cases of the 628 enrolled) with the columns, in order:

        ========  ===============================================================
        ID        participant identification code (1-628)
        AGE       age at enrollment, years
        BECK      Beck depression score at admission (0-54)
        HC        heroin/cocaine use in the 3 months before admission
                  (1 heroin & cocaine, 2 heroin only, 3 cocaine only, 4 neither)
        IV        IV drug use history at admission (1 never, 2 previous, 3 recent)
        NDT       number of prior drug treatments (0-40)
        RACE      0 white, 1 other
        TREAT     treatment randomisation: 0 short, 1 long
        SITE      treatment site: 0 A, 1 B
        LEN.T     length of stay in treatment, days (admission to exit)
        TIME      time to return to drug use, days (from admission)
        CENSOR    1 returned to drug use (or lost to follow-up), 0 otherwise
        Y         log(TIME)
        ND1       10 / (NDT + 1) (fractional-polynomial term of NDT)
        ND2       ND1 * log((NDT + 1) / 10)
        LNDT      log(NDT + 1)
        FRAC      compliance fraction: LEN.T / planned length of the assigned treatment
        IV3       1 when IV == 3 (recent IV drug use)
        ========  ===============================================================

    Notes
    -----
    The data file is shipped byte-for-byte as exported from R package ``quantreg``'s
    dataset ``uis`` (row-name column dropped). Models fitted to it reproduce Hosmer &
    Lemeshow's published results: e.g. logistic ``DFREE ~ AGE`` with ``DFREE = TIME >=
    365`` (147 of 575 drug-free) gives intercept -1.6602 (SE 0.5111) and AGE 0.0182
    (SE 0.0153), *Applied Logistic Regression* 2nd ed., Table 4.1; the site-stratified
    Cox model of *Applied Survival Analysis* Table 7.1 is reproduced within 3e-4 on the
    coefficients (the book's data version differs very slightly).

    Equivalent in R: ``data(uis, package = "quantreg")``.

    Provenance and licence: University of Massachusetts AIDS Research Unit (UMARU)
    IMPACT Study (UIS), two randomised trials of planned treatment duration at two
    residential sites (McCusker et al., 1997), as distributed with
    Hosmer, D.W. & Lemeshow, S., *Applied Survival Analysis* (Wiley, 1999, Table 1.3)
    and *Applied Logistic Regression*, 2nd ed. (Wiley, 2000). The textbook data are
    © John Wiley & Sons and are redistributed here with acknowledgement; this file comes
    from R package ``quantreg`` (R. Koenker; GPL >= 2).

    References
    ----------
    .. [1] Hosmer, D.W. & Lemeshow, S. (1999). *Applied Survival Analysis: Regression
       Modeling of Time to Event Data*. New York: Wiley.
    .. [2] Hosmer, D.W. & Lemeshow, S. (2000). *Applied Logistic Regression*, 2nd ed.
       New York: Wiley.
    .. [3] McCusker, J. et al. (1997). The effects of planned
       duration of residential drug abuse treatment on recovery and HIV risk behavior.
       *American Journal of Public Health* 87(10), 1637-1644.

    Examples
    --------
    >>> from recoverystats.datasets import load_uis
    >>> uis = load_uis()
    >>> uis.shape
    (575, 18)
    >>> int((uis["TIME"] >= 365).sum())
    147
    """
    return _read("uis.csv")


def load_rossi() -> pd.DataFrame:
    """The Rossi, Berk & Lenihan (1980) recidivism experiment: 432 men x 9 columns.

    432 men released from Maryland state prisons in the early 1970s were followed for
    one year; half were randomised to receive financial aid after release. 114 were
    re-arrested.

    Returns
    -------
    pandas.DataFrame
        432 rows with the integer columns, in order:

        ======  ===================================================================
        week    week of first arrest after release, or 52 if not arrested (censored)
        arrest  1 re-arrested during the year, 0 not
        fin     1 received financial aid (the randomised intervention), 0 not
        age     age in years at release
        race    1 black, 0 other
        wexp    1 had full-time work experience before incarceration, 0 not
        mar     1 married at release, 0 not
        paro    1 released on parole, 0 not
        prio    number of prior convictions
        ======  ===================================================================

    Notes
    -----
    Nobody is censored before week 52, so the proportion not re-arrested at one year
    is exact: 150/216 (no aid), 168/216 (aid), 318/432 overall. The Cox model
    ``arrest ~ fin + age + race + wexp + mar + paro + prio`` (Efron ties) gives
    fin -0.3794 (SE 0.1914), prio 0.0915 (SE 0.0286), log partial likelihood -658.748
    (R ``survival::coxph``, printed in Fox & Weisberg's appendix and the lifelines
    documentation).

    Equivalent in R: ``carData::Rossi`` (0/1 coded; R's version codes race and mar as
    factors) and in Python ``lifelines.datasets.load_rossi()``.

    Provenance and licence: Rossi, P.H., Berk, R.A. & Lenihan, K.J. (1980). The file is
    shipped byte-for-byte as distributed with the Python package lifelines
    (``lifelines/datasets/rossi.csv``; MIT licence, © Cameron Davidson-Pilon and
    contributors), identical to R ``carData::Rossi`` (GPL >= 2) after 0/1 recoding; also
    distributed with Allison (1995).

    References
    ----------
    .. [1] Rossi, P.H., Berk, R.A. & Lenihan, K.J. (1980). *Money, Work, and Crime:
       Some Experimental Results*. New York: Academic Press.
    .. [2] Allison, P.D. (1995). *Survival Analysis Using the SAS System: A Practical
       Guide*. Cary, NC: SAS Institute.
    .. [3] Fox, J. & Weisberg, S. (2018). Cox proportional-hazards regression for
       survival data in R. Appendix to *An R Companion to Applied Regression*, 3rd ed.

    Examples
    --------
    >>> from recoverystats.datasets import load_rossi
    >>> rossi = load_rossi()
    >>> rossi.shape
    (432, 9)
    >>> int(rossi["arrest"].sum())
    114
    """
    return _read("rossi.csv")


def rossi_as_program() -> ProgramData:
    """The Rossi data laid out as program tables (participants + arrest events).

    Returns
    -------
    ProgramData
        ``participants``: 432 rows, ``participant_id`` ``R001``-``R432`` (file order),
        ``release_date = enrollment_date = 1971-07-01`` for everyone, ``group``
        ``financial_aid`` (fin = 1) or ``no_aid`` (fin = 0), ``age``, ``site = "maryland"``,
        ``followup_end_date = release + 365 days``, ``race`` as text (``black`` /
        ``other``, the canonical string column), and the extra covariate columns
        ``fin, race_black, wexp, mar, paro, prio`` (0/1 and counts exactly as in
        :func:`load_rossi`; ``race_black`` is Rossi's ``race``), plus ``week`` and
        ``arrest`` for cross-checks. ``events``: one ``arrest`` event
        (source ``rossi_1980``) for each of the 114 arrested men. ``as_of`` is the
        follow-up end, 1972-06-30 (1972 is a leap year). The other tables are empty.

    Notes
    -----
    Day mapping: the data give only the week of first arrest. An arrest in week ``w``
    (days ``7(w-1)+1 .. 7w`` after release) is dated at the middle of the week,
    ``release + (7w - 3)`` days, so the latest (week 52) is day 361. Follow-up ends on
    day 365 (52 weeks and one day): one day longer than the 364 days of 52 weeks so
    that a 365-day window is fully observed for the men never arrested. With this
    mapping a 1-year (365-day) rearrest measure gives exactly 114/432, and
    arrest-free survival at day 364 is 150/216 (no aid) and 168/216 (aid). Because
    all men share one release date, event times in days are ``7 * week - 3``, a strictly
    increasing transform of ``week``, so Cox and log-rank results in days equal those in
    weeks.
    """
    from recoverystats.io.program import ProgramData

    r = load_rossi()
    n = len(r)
    pid = pd.Series([f"R{i:03d}" for i in range(1, n + 1)], dtype="string")
    release = ROSSI_RELEASE_DATE
    participants = pd.DataFrame(
        {
            "participant_id": pid,
            "enrollment_date": release,
            "group": pd.Series(np.where(r["fin"] == 1, "financial_aid", "no_aid"), dtype="string"),
            "site": pd.Series(["maryland"] * n, dtype="string"),
            "release_date": release,
            "age": r["age"].astype(float),
            "followup_end_date": release + pd.Timedelta(days=ROSSI_FOLLOWUP_DAYS),
            "race": pd.Series(np.where(r["race"] == 1, "black", "other"), dtype="string"),
            "fin": r["fin"],
            "race_black": r["race"],
            "wexp": r["wexp"],
            "mar": r["mar"],
            "paro": r["paro"],
            "prio": r["prio"],
            "week": r["week"],
            "arrest": r["arrest"],
        }
    )
    arrested = r["arrest"].to_numpy() == 1
    events = pd.DataFrame(
        {
            "participant_id": pid[arrested].reset_index(drop=True),
            "event_date": release
            + pd.to_timedelta(7 * r.loc[arrested, "week"].to_numpy() - 3, unit="D"),
            "event_type": pd.Series(["arrest"] * int(arrested.sum()), dtype="string"),
            "source": pd.Series(["rossi_1980"] * int(arrested.sum()), dtype="string"),
        }
    )
    return ProgramData.from_tables(
        participants=participants,
        events=events,
        as_of=release + pd.Timedelta(days=ROSSI_FOLLOWUP_DAYS),
    )
