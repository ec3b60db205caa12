"""The program simulator: schema conformance, determinism, integrity, and recovery of the truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recoverystats.datasets import SimulatedProgram, SimulationParameters, simulate_program
from recoverystats.datasets.simulate import _age_distribution
from recoverystats.errors import InvalidParameterError
from recoverystats.io.program import ProgramData
from recoverystats.schema.spec import RECIDIVISM_LEVELS, TABLE_NAMES, TABLES

#: Recovery of a true parameter: the estimate is within this many standard errors of it.
Z_TOL = 3.0
#: Exact arithmetic identities (probabilities computed two ways from the same formula).
EXACT_RTOL = 1e-9
#: Monte Carlo check of the quadrature (population marginal risks): 3 MC standard errors.
MC_Z = 3.0


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim() -> SimulatedProgram:
    return simulate_program()  # the defaults: 1200 participants, seed 0


@pytest.fixture(scope="module")
def big() -> SimulatedProgram:
    return simulate_program(5000, seed=3, contacts=False, assessments=False)


def _canonical_columns(name: str) -> list[str]:
    return [c.name for c in TABLES[name].columns if not getattr(c, "derived", False)]


def first_event(sim: SimulatedProgram, kind: str) -> pd.DataFrame:
    """Time to the first relapse / rearrest computed directly with pandas from the tables.

    Origin: enrollment (relapse) or release, else enrollment (rearrest); censoring at
    min(followup_end_date, death, as_of) -- the docs/measures.md definitions.
    """
    P = sim.tables["participants"].set_index("participant_id")
    E = sim.tables["events"]
    if kind == "rearrest":
        origin = P["release_date"].fillna(P["enrollment_date"])
        ev = E[E["event_type"].isin(RECIDIVISM_LEVELS["rearrest"])]
    else:
        origin = P["enrollment_date"]
        ev = E[
            E["event_type"].isin(["relapse", "substance_use"])
            | ((E["event_type"] == "drug_screen") & (E["result"] == "positive"))
        ]
    ev = ev[ev["event_date"].to_numpy() > origin.loc[ev["participant_id"]].to_numpy()]
    first = ev.groupby("participant_id")["event_date"].min().reindex(P.index)
    death = (
        E[E["event_type"] == "death"].groupby("participant_id")["event_date"].min().reindex(P.index)
    )
    end = pd.concat(
        [P["followup_end_date"], pd.Series(sim.as_of, index=P.index), death], axis=1
    ).min(axis=1)
    event = first.notna() & (first <= end)
    stop = first.where(event, end)
    out = P[["group", "risk_level", "age", "gender"]].copy()
    out["time"] = (stop - origin).dt.days
    out["event"] = event.astype(int)
    out["eligible_365"] = (origin + pd.Timedelta(days=365) <= end) | event & (out["time"] <= 365)
    return out


def design(df: pd.DataFrame) -> pd.DataFrame:
    x = pd.DataFrame({"mentoring": (df["group"] == "peer_mentoring").astype(float)}, index=df.index)
    for level in ("moderate", "high", "very_high"):
        x[level] = (df["risk_level"] == level).astype(float)
    x["age"] = df["age"].astype(float)
    x["female"] = (df["gender"] == "female").astype(float)
    x["nonbinary"] = (df["gender"] == "nonbinary").astype(float)
    return x


def true_coefs(sim: SimulatedProgram, outcome: str) -> pd.Series:
    c = sim.truth.parameters.coefficients(outcome)
    return pd.Series(
        {
            "mentoring": c["group[peer_mentoring]"],
            "moderate": c["risk_level[moderate]"],
            "high": c["risk_level[high]"],
            "very_high": c["risk_level[very_high]"],
            "age": c["age"],
            "female": c["gender[female]"],
            "nonbinary": c["gender[nonbinary]"],
        }
    )


# ---------------------------------------------------------------------------
# shape, dtypes, codes
# ---------------------------------------------------------------------------
def test_tables_conform_to_schema(sim):
    assert set(sim.tables) == set(TABLE_NAMES)
    for name, df in sim.tables.items():
        spec = TABLES[name]
        assert list(df.columns) == _canonical_columns(name), name
        for col in df.columns:
            c = spec.column(col)
            assert str(df[col].dtype) == c.dtype, (name, col, df[col].dtype)
            if c.codes is not None:
                bad = set(df[col].dropna().unique()) - set(c.codes)
                assert not bad, (name, col, bad)
            if c.range is not None and len(df):
                v = df[col].dropna().astype(float)
                assert v.between(*c.range).all(), (name, col)
            if c.required:
                assert df[col].notna().all(), (name, col)
        if spec.key:
            assert not df.duplicated(list(spec.key)).any(), name


def test_default_sizes_and_every_code_used(sim):
    t = sim.tables
    assert len(t["participants"]) == 1200 and len(t["mentors"]) == 40
    assert set(t["participants"]["group"]) == {"peer_mentoring", "comparison"}
    assert set(t["participants"]["site"]) == {"site_a", "site_b", "site_c"}
    assert set(t["participants"]["risk_level"]) == {"low", "moderate", "high", "very_high"}
    assert set(t["participants"]["gender"]) == {"male", "female", "nonbinary"}
    used = set(t["events"]["event_type"])
    assert used == set(TABLES["events"].column("event_type").codes)
    assert {"completed", "withdrew", "lost_contact", "incarcerated", "died"} <= set(
        t["participants"]["discharge_reason"].dropna()
    )
    assert set(t["contacts"]["modality"]) == set(TABLES["contacts"].column("modality").codes)
    assert set(t["assessments"]["timepoint"]) == {"intake", "followup_6m", "discharge"}
    # IDs are zero-padded text
    assert t["participants"]["participant_id"].iloc[0] == "P000001"
    assert t["mentors"]["mentor_id"].iloc[0] == "M001"


def test_as_of_is_last_day_of_last_quarter(sim):
    assert sim.truth.as_of == pd.Timestamp("2026-09-30")
    s = simulate_program(50, start="2025-01-01", quarters=1, seed=2)
    assert s.as_of == pd.Timestamp("2025-03-31")
    assert s.tables["participants"]["enrollment_date"].between("2025-01-01", "2025-03-31").all()


def test_nothing_dated_after_the_cutoff_followup_end_or_death(sim):
    t = sim.tables
    P = t["participants"].set_index("participant_id")
    for name, col in (
        ("events", "event_date"),
        ("contacts", "contact_date"),
        ("assessments", "assessment_date"),
        ("matches", "match_date"),
        ("matches", "end_date"),
    ):
        assert (t[name][col].dropna() <= sim.as_of).all(), (name, col)
    assert (P["discharge_date"].dropna() <= sim.as_of).all()
    E = t["events"]
    assert (
        E["event_date"].to_numpy() <= P.loc[E["participant_id"], "followup_end_date"].to_numpy()
    ).all()
    death = E[E["event_type"] == "death"].set_index("participant_id")["event_date"]
    assert death.index.is_unique
    after = E.join(death.rename("death"), on="participant_id")
    assert not (after["event_date"] > after["death"]).any()
    C = t["contacts"].join(death.rename("death"), on="participant_id")
    assert not (C["contact_date"] > C["death"]).any()


def test_participant_attributes_are_consistent(sim):
    P = sim.tables["participants"]
    # birth_date consistent with age in completed years at enrollment
    e, b = P["enrollment_date"], P["birth_date"]
    completed = (
        e.dt.year
        - b.dt.year
        - ((e.dt.month < b.dt.month) | ((e.dt.month == b.dt.month) & (e.dt.day < b.dt.day)))
    )
    np.testing.assert_array_equal(completed.to_numpy(), P["age"].to_numpy())
    assert P["age"].between(18, 70).all()
    # release shortly before enrollment for the justice-involved share
    gap = (P["enrollment_date"] - P["release_date"]).dt.days.dropna()
    assert gap.between(0, 30).all()
    share = P["release_date"].notna().mean()
    assert 0.5 < share < 0.75
    # followup_end = enrollment + 730 days
    assert ((P["followup_end_date"] - P["enrollment_date"]).dt.days == 730).all()
    # discharge date and reason go together, and discharge is not before enrollment
    assert (P["discharge_date"].isna() == P["discharge_reason"].isna()).all()
    assert (
        P["discharge_date"].dropna() >= P.loc[P["discharge_date"].notna(), "enrollment_date"]
    ).all()
    done = P[P["discharge_reason"] == "completed"]
    days = (done["discharge_date"] - done["enrollment_date"]).dt.days
    assert days.between(335, 395).all()
    # risk score within the LSI-R-style band of the risk level
    bands = {"low": (0, 13), "moderate": (14, 23), "high": (24, 33), "very_high": (34, 54)}
    for level, (lo, hi) in bands.items():
        assert P.loc[P["risk_level"] == level, "risk_score"].between(lo, hi).all()


def test_discharge_reasons_match_events(sim):
    P = sim.tables["participants"]
    E = sim.tables["events"]
    for reason, etype in (("died", "death"), ("incarcerated", "incarceration")):
        sub = P[P["discharge_reason"] == reason]
        assert len(sub) > 0
        ev = E[E["event_type"] == etype][["participant_id", "event_date"]]
        merged = sub.merge(
            ev,
            left_on=["participant_id", "discharge_date"],
            right_on=["participant_id", "event_date"],
            how="left",
        )
        assert merged["event_date"].notna().groupby(merged["participant_id"]).any().all(), reason
    # every death during the program period ends enrollment with reason "died" unless discharged earlier
    deaths = E[E["event_type"] == "death"].merge(P, on="participant_id")
    still_enrolled = deaths["discharge_date"].isna()
    assert not still_enrolled.any()


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------
def test_same_seed_identical_different_seed_different():
    a = simulate_program(300, seed=5)
    b = simulate_program(300, seed=5)
    c = simulate_program(300, seed=6)
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    pd.testing.assert_frame_equal(a.truth.latent, b.truth.latent)
    pd.testing.assert_frame_equal(a.truth.marginal, b.truth.marginal)
    assert not a.tables["participants"].equals(c.tables["participants"])
    assert not a.tables["events"].equals(c.tables["events"])


def test_default_output_is_pinned(sim):
    """The default call's output is what data/sample/ (tools/make_sample.py) was written from.

    If this fails after an intended change to the simulator, regenerate the sample with
    ``python tools/make_sample.py`` and update these counts.
    """
    assert {k: len(v) for k, v in sim.tables.items()} == {
        "participants": 1200,
        "mentors": 40,
        "matches": 532,
        "contacts": 12746,
        "events": 11597,
        "assessments": 2051,
    }
    assert sim.tables["events"]["event_type"].value_counts().sort_index().to_dict() == {
        "arrest": 442,
        "conviction": 177,
        "death": 12,
        "drug_screen": 7451,
        "ed_visit": 555,
        "hospitalization": 200,
        "incarceration": 74,
        "overdose": 62,
        "parole_violation": 182,
        "probation_violation": 193,
        "relapse": 240,
        "substance_use": 2009,
    }


def test_lean_mode_leaves_other_tables_unchanged():
    full = simulate_program(400, seed=9)
    lean = simulate_program(400, seed=9, contacts=False, assessments=False)
    assert len(lean.tables["contacts"]) == 0 and len(lean.tables["assessments"]) == 0
    assert list(lean.tables["contacts"].columns) == _canonical_columns("contacts")
    for name in ("participants", "mentors", "matches", "events"):
        pd.testing.assert_frame_equal(full.tables[name], lean.tables[name])
    pd.testing.assert_frame_equal(full.truth.noms, lean.truth.noms)


# ---------------------------------------------------------------------------
# referential integrity and nesting
# ---------------------------------------------------------------------------
def test_referential_integrity(sim):
    t = sim.tables
    pids = set(t["participants"]["participant_id"])
    mids = set(t["mentors"]["mentor_id"])
    for name in ("matches", "contacts", "events", "assessments"):
        assert set(t[name]["participant_id"]) <= pids, name
    assert set(t["matches"]["mentor_id"]) <= mids
    assert set(t["contacts"]["mentor_id"]) <= mids
    P = t["participants"].set_index("participant_id")
    M = t["matches"]
    # only peer_mentoring participants are matched, with mentors of their own site, after enrollment
    assert (P.loc[M["participant_id"], "group"] == "peer_mentoring").all()
    msite = t["mentors"].set_index("mentor_id")["site"]
    assert (
        msite.loc[M["mentor_id"]].to_numpy() == P.loc[M["participant_id"], "site"].to_numpy()
    ).all()
    assert (
        M["match_date"].to_numpy() > P.loc[M["participant_id"], "enrollment_date"].to_numpy()
    ).all()
    assert (M["end_date"].isna() | (M["end_date"] >= M["match_date"])).all()
    share_matched = M["participant_id"].nunique() / (P["group"] == "peer_mentoring").sum()
    assert 0.8 < share_matched < 0.97
    assert M["participant_id"].duplicated().sum() > 0  # some re-matches
    # each contact is with the mentor matched at that date
    # (a participant never has the same mentor twice, so the merge is one-to-one)
    C = t["contacts"].merge(
        M, on=["participant_id", "mentor_id"], how="left", validate="many_to_one"
    )
    assert len(C) == len(t["contacts"]) and C["match_date"].notna().all()
    inside = (C["contact_date"] >= C["match_date"]) & (
        C["end_date"].isna() | (C["contact_date"] < C["end_date"])
    )
    assert inside.all()


def test_rearrest_contains_reconviction_contains_reincarceration(sim):
    E = sim.tables["events"]
    who = {
        t: set(E.loc[E["event_type"] == t, "participant_id"])
        for t in ("arrest", "conviction", "incarceration")
    }
    assert who["incarceration"] <= who["conviction"] <= who["arrest"]
    assert len(who["incarceration"]) > 0
    first = {
        t: E[E["event_type"] == t].groupby("participant_id")["event_date"].min()
        for t in ("arrest", "conviction", "incarceration")
    }
    assert (first["conviction"] > first["arrest"].loc[first["conviction"].index]).all()
    assert (first["incarceration"] >= first["conviction"].loc[first["incarceration"].index]).all()
    # and for the levels as defined by the measures (within any window)
    P = sim.tables["participants"].set_index("participant_id")
    origin = P["release_date"].fillna(P["enrollment_date"])
    sets = {}
    for level, types in RECIDIVISM_LEVELS.items():
        ev = E[E["event_type"].isin(types)]
        t_ = (ev["event_date"] - origin.loc[ev["participant_id"]].to_numpy()).dt.days
        sets[level] = set(ev.loc[(t_ > 0) & (t_ <= 365), "participant_id"])
    assert sets["reincarceration"] <= sets["reconviction"] <= sets["rearrest"]


def test_relapse_events_start_at_the_latent_relapse_day(sim):
    E = sim.tables["events"]
    lat = sim.truth.latent.set_index("participant_id")
    rel = E[
        E["event_type"].isin(["relapse", "substance_use"])
        | ((E["event_type"] == "drug_screen") & (E["result"] == "positive"))
    ]
    first = rel.groupby("participant_id")["event_date"].min()
    np.testing.assert_array_equal(first.to_numpy(), lat.loc[first.index, "relapse_day"].to_numpy())
    # no positive screen before the relapse day, ever
    pos = E[(E["event_type"] == "drug_screen") & (E["result"] == "positive")]
    assert (
        pos["event_date"].to_numpy() >= lat.loc[pos["participant_id"], "relapse_day"].to_numpy()
    ).all()
    # the measured time is ceil(latent time)
    df = first_event(sim, "relapse")
    ev = df[df["event"] == 1]
    np.testing.assert_array_equal(
        ev["time"].to_numpy(), np.ceil(lat.loc[ev.index, "relapse_time"].to_numpy()).astype(int)
    )


# ---------------------------------------------------------------------------
# the truth
# ---------------------------------------------------------------------------
def test_truth_states_the_parameters(sim):
    tr = sim.truth
    assert tr.mentor_sd == 0.30
    assert tr.log_hazard_ratio("relapse") == -0.35
    assert tr.log_hazard_ratio("rearrest") == -0.30
    assert tr.log_hazard_ratio("dropout") == -0.40
    assert tr.log_hazard_ratio("rearrest", "risk_level[very_high]") == 1.20
    c = tr.coefficients
    np.testing.assert_allclose(c["hazard_ratio"], np.exp(c["log_hazard"]), rtol=EXACT_RTOL)
    assert list(tr.mentor_effects.columns) == ["mentor_id", "site", "effect"]
    assert len(tr.mentor_effects) == 40
    lat = tr.latent.set_index("participant_id")
    assert (lat.loc[lat["group"] == "comparison", "mentor_effect"] == 0).all()
    # a matched participant's effect is their first mentor's
    M = sim.tables["matches"].sort_values("match_date").drop_duplicates("participant_id")
    eff = tr.mentor_effects.set_index("mentor_id")["effect"]
    np.testing.assert_allclose(
        lat.loc[M["participant_id"], "mentor_effect"].to_numpy(),
        eff.loc[M["mentor_id"]].to_numpy(),
        rtol=EXACT_RTOL,
    )
    assert "as_of=2026-09-30" in repr(tr) and "mentor_sd=0.3" in repr(tr)
    # realised effects are centred over matched participants (the group effect is not shifted)
    matched = lat["assigned_mentor_id"].notna()
    assert matched.sum() > 0 and lat.loc[~matched, "mentor_effect"].eq(0).all()
    np.testing.assert_allclose(lat.loc[matched, "mentor_effect"].mean(), 0.0, atol=1e-12)


def test_overrides_reach_the_truth():
    s = simulate_program(200, seed=1, relapse_mentoring=-0.8, mentor_sd=0.0)
    assert s.truth.log_hazard_ratio("relapse") == -0.8
    assert s.truth.mentor_sd == 0.0
    assert (s.truth.latent["mentor_effect"] == 0).all()
    assert s.truth.parameters == dataclasses.replace(
        SimulationParameters(), relapse_mentoring=-0.8, mentor_sd=0.0
    )


def test_changing_the_mentor_sd_changes_only_what_it_acts_on():
    a = simulate_program(300, seed=6, contacts=False, assessments=False)
    b = simulate_program(300, seed=6, contacts=False, assessments=False, mentor_sd=0.0)
    # the same people, sites, groups, mentors and mentor assignments: only the outcome hazards
    # move (and what follows from outcomes: discharge by incarceration/death, match end dates)
    pd.testing.assert_frame_equal(a.tables["mentors"], b.tables["mentors"])
    pd.testing.assert_series_equal(
        a.truth.latent["assigned_mentor_id"], b.truth.latent["assigned_mentor_id"]
    )
    keep = ["participant_id", "enrollment_date", "group", "site", "age", "gender", "risk_level"]
    pd.testing.assert_frame_equal(a.tables["participants"][keep], b.tables["participants"][keep])
    assert (b.truth.mentor_effects["effect"] == 0).all()
    assert not a.tables["events"].equals(b.tables["events"])


def test_mentor_effect_sd_matches_the_stated_sd():
    s = simulate_program(100, n_mentors=400, n_sites=4, seed=4, contacts=False, assessments=False)
    u = s.truth.mentor_effects["effect"].to_numpy()
    # (n-1) s^2 / sigma^2 ~ chi2(n-1); 0.1% and 99.9% quantiles for 399 df
    from scipy import stats

    lo, hi = stats.chi2.ppf([0.001, 0.999], 399)
    stat = 399 * u.var(ddof=1) / 0.30**2
    assert lo < stat < hi


def test_event_probability_and_cloglog_formulas(sim):
    tr = sim.truth
    p = tr.parameters
    # reference participant: 1 - exp(-(365/scale)^shape)
    expected = 1 - np.exp(-((365 / p.rearrest_scale) ** p.rearrest_shape))
    got = tr.event_probability("rearrest", 365, group="comparison")
    np.testing.assert_allclose(got, expected, rtol=EXACT_RTOL)
    # a mentored, very-high-risk 45-year-old woman
    eta = -0.30 + 1.20 - 0.025 * 10 - 0.35
    got = tr.event_probability(
        "rearrest", 365, group="peer_mentoring", risk_level="very_high", age=45, gender="female"
    )
    np.testing.assert_allclose(
        got, 1 - np.exp(-((365 / 2700) ** 0.9) * np.exp(eta)), rtol=EXACT_RTOL
    )
    b = tr.cloglog_coefficients("rearrest", 365)
    lin = (
        b["Intercept"]
        + b["group[peer_mentoring]"]
        + b["risk_level[very_high]"]
        + b["age"] * 45
        + b["gender[female]"]
    )
    np.testing.assert_allclose(1 - np.exp(-np.exp(lin)), got, rtol=EXACT_RTOL)
    # the sample column is the mean of the per-participant probabilities
    lat = tr.latent
    m = tr.marginal.set_index(["outcome", "days", "group"])
    probs = 1 - np.exp(-((365 / 1050) ** 0.8) * np.exp(lat["lp_relapse"]))
    for g in ("peer_mentoring", "comparison"):
        np.testing.assert_allclose(
            m.loc[("relapse", 365, g), "sample"], probs[lat["group"] == g].mean(), rtol=EXACT_RTOL
        )
    c = tr.contrasts.set_index(["outcome", "days", "measure"])
    p1, p0 = (
        m.loc[("relapse", 365, "peer_mentoring"), "population"],
        m.loc[("relapse", 365, "comparison"), "population"],
    )
    np.testing.assert_allclose(
        c.loc[("relapse", 365, "rd"), "population"], p1 - p0, rtol=EXACT_RTOL
    )
    np.testing.assert_allclose(
        c.loc[("relapse", 365, "or"), "population"],
        p1 / (1 - p1) / (p0 / (1 - p0)),
        rtol=EXACT_RTOL,
    )


def test_population_marginal_matches_brute_force_monte_carlo(sim):
    """Independent check of the quadrature: draw covariates and mentor effects directly."""
    p = sim.truth.parameters
    rng = np.random.default_rng(2024)
    n = 400_000
    age = np.minimum(18 + np.floor(53 * rng.beta(2.0, 4.0, n)), 70)
    risk = rng.choice(4, n, p=p.p_risk)
    gender = rng.choice(3, n, p=p.p_gender)
    matched = rng.random(n) < p.p_match
    u = np.where(matched, rng.normal(0, p.mentor_sd, n), 0.0)
    eta = (
        -0.30
        + np.array([0, 0.4, 0.8, 1.2])[risk]
        - 0.025 * (age - 35)
        + np.array([0, -0.35, 0.0])[gender]
        + u
    )
    prob = 1 - np.exp(-((365 / 2700) ** 0.9) * np.exp(eta))
    mc, se = prob.mean(), prob.std() / np.sqrt(n)
    m = sim.truth.marginal.set_index(["outcome", "days", "group"])
    assert abs(m.loc[("rearrest", 365, "peer_mentoring"), "population"] - mc) < MC_Z * se
    ages, probs = _age_distribution(p)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=EXACT_RTOL)
    np.testing.assert_allclose((ages * probs).sum(), age.mean(), atol=MC_Z * age.std() / np.sqrt(n))


def test_cox_recovers_mentoring_log_hazard_ratio(big):
    """lifelines CoxPHFitter (Efron) on time to first rearrest / relapse from the tables.

    Equivalent R: ``coxph(Surv(time, event) ~ mentoring + risk + age + gender)``.
    The mentor random effect (SD 0.3) is not modelled, so the marginal estimate is
    slightly attenuated; at n = 5000 that is far inside 3 SEs.
    """
    from lifelines import CoxPHFitter

    for outcome in ("rearrest", "relapse"):
        df = first_event(big, outcome)
        x = design(df).assign(time=df["time"], event=df["event"])
        fit = CoxPHFitter().fit(x, "time", "event")
        est = fit.params_["mentoring"]
        se = fit.standard_errors_["mentoring"]
        truth = big.truth.log_hazard_ratio(outcome)
        assert abs(est - truth) < Z_TOL * se, (outcome, est, se)
        # and the effect is really there: the estimate excludes 0
        assert est + 2 * se < 0


def test_one_year_risk_matches_truth_by_kaplan_meier(big):
    """1 - KM(365) by group (lifelines KaplanMeierFitter) vs the true sample risk."""
    from lifelines import KaplanMeierFitter

    df = first_event(big, "rearrest")
    m = big.truth.marginal.set_index(["outcome", "days", "group"])
    for g in ("peer_mentoring", "comparison"):
        d = df[df["group"] == g]
        km = KaplanMeierFitter().fit(d["time"], d["event"])
        est = 1 - float(km.survival_function_at_times(365).iloc[0])
        ci = km.confidence_interval_survival_function_
        lo = 1 - float(ci[ci.index <= 365].iloc[-1, 1])
        hi = 1 - float(ci[ci.index <= 365].iloc[-1, 0])
        se = abs(hi - lo) / (2 * 1.96)
        assert abs(est - m.loc[("rearrest", 365, g), "sample"]) < Z_TOL * se, (g, est)


def test_cloglog_glm_on_one_year_indicator_recovers_log_hazards():
    """statsmodels GLM(binomial, cloglog) on "rearrested within 365 days" among the fully observed.

    Equivalent R: ``glm(event365 ~ ..., family = binomial(link = "cloglog"))``.
    No mentor effect and no deaths here, so the slopes are exactly the log-hazard
    coefficients.
    """
    import statsmodels.api as sm

    s = simulate_program(
        6000,
        seed=21,
        quarters=12,
        mentor_sd=0.0,
        death_rate=0.0,
        p_overdose_fatal=0.0,
        contacts=False,
        assessments=False,
    )
    df = first_event(s, "rearrest")
    df = df[df["eligible_365"]]
    y = ((df["event"] == 1) & (df["time"] <= 365)).astype(float)
    x = sm.add_constant(design(df))
    fit = sm.GLM(y, x, family=sm.families.Binomial(link=sm.families.links.CLogLog())).fit()
    truth = s.truth.cloglog_coefficients("rearrest", 365)
    want = pd.Series(
        {
            "const": truth["Intercept"],
            "mentoring": truth["group[peer_mentoring]"],
            "moderate": truth["risk_level[moderate]"],
            "high": truth["risk_level[high]"],
            "very_high": truth["risk_level[very_high]"],
            "age": truth["age"],
            "female": truth["gender[female]"],
        }
    )
    z = (fit.params[want.index] - want) / fit.bse[want.index]
    assert (z.abs() < Z_TOL).all(), z.to_dict()


def test_dropout_model_recovered(big):
    """Cause-specific Cox of early discharge (withdrew/lost_contact/transferred/administrative)."""
    from lifelines import CoxPHFitter

    P = big.tables["participants"].set_index("participant_id")
    early = P["discharge_reason"].isin(
        ["withdrew", "lost_contact", "transferred", "administrative"]
    )
    end = P["discharge_date"].fillna(big.as_of)
    x = design(P).assign(time=(end - P["enrollment_date"]).dt.days, event=early.astype(int))
    fit = CoxPHFitter().fit(x, "time", "event")
    for term, key in (
        ("mentoring", "group[peer_mentoring]"),
        ("very_high", "risk_level[very_high]"),
    ):
        truth = big.truth.log_hazard_ratio("dropout", key)
        assert abs(fit.params_[term] - truth) < Z_TOL * fit.standard_errors_[term], term


# ---------------------------------------------------------------------------
# planted effects of mentor characteristics
# ---------------------------------------------------------------------------
#: Every planted mentor-characteristic parameter, as (outcome, characteristic).
MENTOR_TERMS = [
    (outcome, char)
    for outcome in ("relapse", "rearrest", "dropout")
    for char in ("lived_incarceration", "lived_recovery")
]


def assigned_mentor_characteristics(sim: SimulatedProgram) -> pd.DataFrame:
    """0/1 characteristics of each participant's assigned mentor in the truth (0: no mentor)."""
    lat = sim.truth.latent.set_index("participant_id")
    M = sim.tables["mentors"].set_index("mentor_id")
    out = pd.DataFrame(index=lat.index)
    for char in ("lived_incarceration", "lived_recovery"):
        v = M[char].reindex(lat["assigned_mentor_id"].fillna("none").to_numpy())
        out[char] = v.to_numpy(dtype=float, na_value=0.0)
    return out


def first_mentor_characteristics(sim: SimulatedProgram, index: pd.Index) -> pd.DataFrame:
    """The recorded first mentor (matches) and their characteristics (mentors), per participant.

    Participants without a recorded match get characteristics 0 and, as cluster, their own
    participant_id (independent of everyone else).
    """
    first = (
        sim.tables["matches"]
        .sort_values(["participant_id", "match_date", "mentor_id"])
        .drop_duplicates("participant_id")
        .set_index("participant_id")["mentor_id"]
        .reindex(index)
    )
    M = sim.tables["mentors"].set_index("mentor_id")
    out = pd.DataFrame(index=index)
    for char in ("lived_incarceration", "lived_recovery"):
        out[char] = (
            M[char].reindex(first.fillna("none").to_numpy()).to_numpy(dtype=float, na_value=0.0)
        )
    out["cluster"] = first.fillna(pd.Series(index, index=index)).astype(str).to_numpy()
    return out


def mentor_cox(sim: SimulatedProgram, outcome: str):
    """lifelines CoxPHFitter (Efron) of time to first ``outcome`` on the participant covariates
    plus the first mentor's characteristics, with mentor-clustered (sandwich) SEs.

    Equivalent R: ``coxph(Surv(time, event) ~ mentoring + risk + age + gender +
    lived_incarceration + lived_recovery, cluster = mentor_id)``.
    """
    from lifelines import CoxPHFitter

    df = first_event(sim, outcome)
    x = pd.concat([design(df), first_mentor_characteristics(sim, df.index)], axis=1)
    x = x.assign(time=df["time"], event=df["event"])
    return CoxPHFitter().fit(x, "time", "event", cluster_col="cluster")


def test_mentor_characteristic_effects_default_to_zero_and_are_recorded(sim):
    p = SimulationParameters()
    for outcome, char in MENTOR_TERMS:
        assert getattr(p, f"{outcome}_mentor_{char}") == 0.0
        assert sim.truth.log_hazard_ratio(outcome, f"mentor_{char}") == 0.0
    assert "mentor_lived" not in repr(sim.truth)
    s = simulate_program(200, seed=1, relapse_mentor_lived_incarceration=-0.4)
    assert s.truth.log_hazard_ratio("relapse", "mentor_lived_incarceration") == -0.4
    assert s.truth.log_hazard_ratio("rearrest", "mentor_lived_incarceration") == 0.0
    row = s.truth.coefficients.query(
        "outcome == 'relapse' and term == 'mentor_lived_incarceration'"
    )
    np.testing.assert_allclose(row["hazard_ratio"], np.exp(-0.4), rtol=EXACT_RTOL)
    assert "relapse log-HR(mentor_lived_incarceration)=-0.4" in repr(s.truth)


@pytest.mark.parametrize(("outcome", "char"), MENTOR_TERMS)
def test_planted_mentor_effect_shifts_only_its_own_linear_predictor(outcome, char):
    """The planted coefficient moves lp_<outcome> by exactly b for participants whose assigned
    mentor has the characteristic, and nothing else that is drawn before the outcomes."""
    b = 0.5
    a = simulate_program(800, seed=12, contacts=False, assessments=False)
    s = simulate_program(
        800, seed=12, contacts=False, assessments=False, **{f"{outcome}_mentor_{char}": b}
    )
    pd.testing.assert_frame_equal(a.tables["mentors"], s.tables["mentors"])
    pd.testing.assert_frame_equal(a.truth.mentor_effects, s.truth.mentor_effects)
    keep = ["participant_id", "enrollment_date", "group", "site", "age", "gender", "risk_level"]
    pd.testing.assert_frame_equal(a.tables["participants"][keep], s.tables["participants"][keep])
    has = assigned_mentor_characteristics(s)[char].to_numpy()
    assert 0 < has.sum() < (s.truth.latent["group"] == "peer_mentoring").sum()
    for other in ("relapse", "rearrest", "dropout"):
        shift = s.truth.latent[f"lp_{other}"] - a.truth.latent[f"lp_{other}"]
        want = b * has if other == outcome else np.zeros(len(has))
        np.testing.assert_allclose(shift.to_numpy(), want, rtol=0, atol=1e-12)
    assert not a.tables["events"].equals(s.tables["events"])  # the outcomes did move


def test_event_probability_and_population_marginal_with_mentor_characteristic_effects():
    s = simulate_program(
        300,
        seed=4,
        rearrest_mentor_lived_incarceration=-0.5,
        rearrest_mentor_lived_recovery=-0.3,
        contacts=False,
        assessments=False,
    )
    tr, p = s.truth, s.truth.parameters
    h0 = (365 / 2700) ** 0.9
    got = tr.event_probability(
        "rearrest", 365, group="peer_mentoring", mentor_lived_incarceration=True
    )
    np.testing.assert_allclose(got, 1 - np.exp(-h0 * np.exp(-0.30 - 0.5)), rtol=EXACT_RTOL)
    both = tr.event_probability(
        "rearrest",
        365,
        group=["peer_mentoring", "peer_mentoring"],
        mentor_lived_incarceration=[True, False],
        mentor_lived_recovery=True,
    )
    np.testing.assert_allclose(
        both, 1 - np.exp(-h0 * np.exp(-0.30 + np.array([-0.5 - 0.3, -0.3]))), rtol=EXACT_RTOL
    )
    with pytest.raises(
        InvalidParameterError,
        match=r"mentor_lived_incarceration must be False for group 'comparison'",
    ):
        tr.event_probability("rearrest", 365, group="comparison", mentor_lived_incarceration=True)
    # population marginal: brute-force Monte Carlo over covariates, mentor characteristics and u
    rng = np.random.default_rng(2025)
    n = 400_000
    age = np.minimum(18 + np.floor(53 * rng.beta(2.0, 4.0, n)), 70)
    risk = rng.choice(4, n, p=p.p_risk)
    gender = rng.choice(3, n, p=p.p_gender)
    matched = rng.random(n) < p.p_match
    inc = matched & (rng.random(n) < 0.6)
    rec = matched & (rng.random(n) < 0.9)
    u = np.where(matched, rng.normal(0, p.mentor_sd, n), 0.0)
    eta = (
        -0.30
        + np.array([0, 0.4, 0.8, 1.2])[risk]
        - 0.025 * (age - 35)
        + np.array([0, -0.35, 0.0])[gender]
        - 0.5 * inc
        - 0.3 * rec
        + u
    )
    prob = 1 - np.exp(-h0 * np.exp(eta))
    mc, se = prob.mean(), prob.std() / np.sqrt(n)
    m = tr.marginal.set_index(["outcome", "days", "group"])
    assert abs(m.loc[("rearrest", 365, "peer_mentoring"), "population"] - mc) < MC_Z * se
    # and the planted effects really moved it (the default is far outside the MC error)
    d = simulate_program(300, seed=4, contacts=False, assessments=False).truth.marginal
    d = d.set_index(["outcome", "days", "group"])
    assert abs(d.loc[("rearrest", 365, "peer_mentoring"), "population"] - mc) > 10 * se


@pytest.fixture(scope="module")
def planted() -> SimulatedProgram:
    """A large program with planted lived-incarceration effects on relapse and rearrest."""
    return simulate_program(
        16_000,
        n_mentors=320,
        n_sites=4,
        seed=31,
        relapse_mentor_lived_incarceration=-0.4,
        rearrest_mentor_lived_incarceration=-0.5,
        contacts=False,
        assessments=False,
    )


def test_cox_recovers_planted_mentor_characteristic_effect(planted):
    """The first mentor's lived incarceration, merged from matches/mentors, recovers the planted
    log-HR within Z_TOL mentor-clustered SEs; the unplanted lived recovery is consistent with 0.

    The SEs are clustered by mentor because u_m (SD 0.3) is independent of the characteristic
    but shared by a mentor's mentees: the realised difference in mean u_m between the ~190
    mentors with lived incarceration and the ~130 without adds an SD of about
    0.3 * sqrt(1/190 + 1/130) = 0.03 that the model-based SE (about 0.04) leaves out.
    """
    for outcome, truth in (("relapse", -0.4), ("rearrest", -0.5)):
        assert planted.truth.log_hazard_ratio(outcome, "mentor_lived_incarceration") == truth
        fit = mentor_cox(planted, outcome)
        est, se = fit.params_["lived_incarceration"], fit.standard_errors_["lived_incarceration"]
        assert abs(est - truth) < Z_TOL * se, (outcome, est, se)
        assert est + Z_TOL * se < 0, (outcome, est, se)  # the effect is detected, clearly not 0
        est0, se0 = fit.params_["lived_recovery"], fit.standard_errors_["lived_recovery"]
        assert abs(est0) < Z_TOL * se0, (outcome, est0, se0)
        # the mentoring coefficient is now the effect of a mentor without lived incarceration
        b = planted.truth.log_hazard_ratio(outcome)
        est_m, se_m = fit.params_["mentoring"], fit.standard_errors_["mentoring"]
        assert abs(est_m - b) < Z_TOL * se_m, (outcome, est_m, se_m)


def test_cox_finds_no_mentor_characteristic_effect_when_none_is_planted():
    """Same program without the planted effects (same seed): lived incarceration is consistent
    with 0 and its estimate is far from the -0.4 of the planted run."""
    s = simulate_program(
        16_000, n_mentors=320, n_sites=4, seed=31, contacts=False, assessments=False
    )
    fit = mentor_cox(s, "relapse")
    est, se = fit.params_["lived_incarceration"], fit.standard_errors_["lived_incarceration"]
    assert abs(est) < Z_TOL * se, (est, se)
    assert abs(est - (-0.4)) > Z_TOL * se, (est, se)


def test_realized_truth_matches_observed_data_and_fixed_window_rates():
    s = simulate_program(6000, seed=17, quarters=12, contacts=False, assessments=False)
    P = s.tables["participants"].set_index("participant_id")
    lat = s.truth.latent.set_index("participant_id")
    # observed discharges are the complete-data discharges that fall on or before as_of
    obs = P["discharge_date"].notna()
    np.testing.assert_array_equal(
        (P.loc[obs, "discharge_date"] - P.loc[obs, "enrollment_date"]).dt.days,
        lat.loc[obs, "discharge_time"].astype(int),
    )
    cause = lat.loc[obs, "discharge_cause"].replace({"dropout": "early"})
    reason = P.loc[obs, "discharge_reason"].where(
        P.loc[obs, "discharge_reason"].isin(["completed", "incarcerated", "died"]), "early"
    )
    assert (cause == reason).all()
    not_yet = P["enrollment_date"] + pd.to_timedelta(lat["discharge_time"], unit="D") > s.as_of
    assert (not_yet == ~obs).all()
    # fixed-window shares among participants whose window is observed (independent of outcome)
    real = s.truth.realized.set_index(["outcome", "days", "group"])
    E = s.tables["events"]
    origin = P["release_date"].fillna(P["enrollment_date"])
    for level, types in RECIDIVISM_LEVELS.items():
        ev = E[E["event_type"].isin(types)]
        t_ = (ev["event_date"] - origin.loc[ev["participant_id"]].to_numpy()).dt.days
        hit = set(ev.loc[(t_ > 0) & (t_ <= 365), "participant_id"])
        eligible = origin + pd.Timedelta(days=365) <= s.as_of
        for g in ("peer_mentoring", "comparison"):
            ids = P.index[eligible & (P["group"] == g)]
            est = pd.Index(ids).isin(list(hit)).mean()
            tv = real.loc[(level, 365, g), "share"]
            assert abs(est - tv) < Z_TOL * np.sqrt(tv * (1 - tv) / len(ids)), (level, g, est, tv)
    L = (P["discharge_date"] - P["enrollment_date"]).dt.days
    for k in (30, 90, 180):
        eligible = P["enrollment_date"] + pd.Timedelta(days=k) <= s.as_of
        retained = (L >= k) | (P["discharge_reason"] == "completed") | P["discharge_date"].isna()
        for g in ("peer_mentoring", "comparison"):
            sel = eligible & (P["group"] == g)
            est = retained[sel].mean()
            tv = real.loc[("retention", k, g), "share"]
            assert abs(est - tv) < Z_TOL * np.sqrt(tv * (1 - tv) / sel.sum()), (k, g, est, tv)
    # the realised shares are close to the model's net risks (death is rare)
    m = s.truth.marginal.set_index(["outcome", "days", "group"])
    for g in ("peer_mentoring", "comparison"):
        assert (
            abs(real.loc[("rearrest", 365, g), "share"] - m.loc[("rearrest", 365, g), "sample"])
            < 0.02
        )
        assert (
            abs(1 - real.loc[("retention", 90, g), "share"] - m.loc[("dropout", 90, g), "sample"])
            < 0.03
        )


def test_assessments_followup_rate_window_and_noms_truth():
    s = simulate_program(6000, seed=8, contacts=False)
    A = s.tables["assessments"]
    P = s.tables["participants"].set_index("participant_id")
    intake = A[A["timepoint"] == "intake"].set_index("participant_id")
    fu = A[A["timepoint"] == "followup_6m"].set_index("participant_id")
    assert fu.index.isin(intake.index).all()
    days = (fu["assessment_date"] - intake.loc[fu.index, "assessment_date"]).dt.days
    in_window = days.between(152, 243)
    assert 0.85 < in_window.mean() < 0.95  # 10% dated outside the 5-8 month window by design
    # follow-up rate among those due well before the cut-off (300 days) and alive: ~80%
    due = intake[(intake["assessment_date"] + pd.Timedelta(days=300) <= s.as_of)].index
    dead = set(
        s.tables["events"].loc[s.tables["events"]["event_type"] == "death", "participant_id"]
    )
    due = [d for d in due if d not in dead]
    rate = pd.Index(due).isin(fu.index).mean()
    se = np.sqrt(0.8 * 0.2 / len(due))
    assert abs(rate - 0.80) < Z_TOL * se
    # matched-pair prevalences target the complete-data truth (follow-up is MCAR)
    truth = s.truth.noms.set_index(["item", "group"])
    pairs = fu.join(intake, rsuffix="_intake")
    for item in ("employed_or_school", "social_support", "any_use_30d"):
        for g in ("peer_mentoring", "comparison"):
            sel = pairs[P.loc[pairs.index, "group"].to_numpy() == g]
            est = sel[item].astype(float).mean()
            tv = truth.loc[(item, g), "followup"]
            assert abs(est - tv) < Z_TOL * np.sqrt(tv * (1 - tv) / len(sel)) + 0.01, (
                item,
                g,
                est,
                tv,
            )
    # known improvement: follow-up better than intake in both arms, and more so with mentoring
    imp = truth["followup"] - truth["intake"]
    assert (
        imp.loc[("social_support", "peer_mentoring")]
        > imp.loc[("social_support", "comparison")]
        > 0
    )
    assert imp.loc[("any_use_30d", "peer_mentoring")] < imp.loc[("any_use_30d", "comparison")] < 0


def test_contacts_rate_higher_early(sim):
    C = sim.tables["contacts"]
    P = sim.tables["participants"].set_index("participant_id")
    d = (C["contact_date"] - P.loc[C["participant_id"], "enrollment_date"].to_numpy()).dt.days
    assert (d >= 1).all()
    M = (
        sim.tables["matches"]
        .sort_values("match_date")
        .drop_duplicates("participant_id")
        .set_index("participant_id")
    )
    # per-30-day rate in days [match, 90) vs [90, 180) among those enrolled through day 180
    stay = P["discharge_date"].isna() | (
        (P["discharge_date"] - P["enrollment_date"]).dt.days >= 180
    )
    ok = M.index[
        stay.loc[M.index].to_numpy()
        & ((sim.as_of - P.loc[M.index, "enrollment_date"]).dt.days >= 180).to_numpy()
    ]
    m_day = (M.loc[ok, "match_date"] - P.loc[ok, "enrollment_date"]).dt.days
    early_exposure = (90 - m_day).clip(lower=0).sum()
    sub = d[C["participant_id"].isin(ok).to_numpy()]
    early = ((sub < 90).sum()) / early_exposure * 30
    late = ((sub >= 90) & (sub < 180)).sum() / (90 * len(ok)) * 30
    assert early > 1.5 * late
    assert 4.5 < early < 7.5 and 2.0 < late < 4.0
    assert C["minutes"].between(1, 240).all()


@pytest.mark.parametrize(
    ("kwargs", "absent"),
    [
        ({"death_rate": 0.0, "p_overdose_fatal": 0.0}, {"death"}),
        ({"overdose_rate": 0.0}, {"overdose"}),
        ({"violation_rate": 0.0}, {"parole_violation", "probation_violation"}),
        ({"screen_rate": 0.0}, {"drug_screen"}),
        ({"p_conviction": 0.0}, {"conviction", "incarceration"}),
        ({"hospitalization_rate": 0.0}, {"hospitalization", "ed_visit"}),
    ],
)
def test_switching_a_process_off_removes_its_events(kwargs, absent):
    s = simulate_program(600, seed=2, contacts=False, assessments=False, **kwargs)
    present = set(s.tables["events"]["event_type"])
    assert not (present & absent)
    assert {"arrest", "relapse"} <= present


def test_no_mentoring_arm_means_no_matches_contacts_or_mentor_effects():
    s = simulate_program(300, seed=2, p_mentoring=0.0)
    assert (s.tables["participants"]["group"] == "comparison").all()
    assert len(s.tables["matches"]) == 0 and len(s.tables["contacts"]) == 0
    assert (s.truth.latent["mentor_effect"] == 0).all()
    assert s.truth.marginal.query("group == 'peer_mentoring'")["sample"].isna().all()


def test_small_edge_cases_still_valid():
    for kwargs in (
        {"n_participants": 1},
        {"n_participants": 5, "n_mentors": 1, "n_sites": 1},
        {"n_participants": 60, "quarters": 1},
    ):
        s = simulate_program(**kwargs)
        prog = s.program()
        assert len(prog.participants) == kwargs["n_participants"]
        assert len(prog.errors) == 0


# ---------------------------------------------------------------------------
# program(), write()
# ---------------------------------------------------------------------------
def test_program_builds_program_data(sim):
    prog = sim.program()
    assert isinstance(prog, ProgramData)
    # the simulated tables pass the loader's validation rules: no errors
    assert len(prog.errors) == 0, prog.errors["message"].head().tolist()
    assert (prog.flow["rows_dropped"] == 0).all()
    # and hold no exact duplicate rows (two identical same-day records are written once)
    for name in ("events", "contacts", "assessments", "matches"):
        assert not sim.tables[name].duplicated().any(), name
    assert prog.as_of == sim.as_of
    assert len(prog.participants) == 1200 and len(prog.events) == len(sim.tables["events"])
    assert sim.program(as_of="2026-06-30").as_of == pd.Timestamp("2026-06-30")
    assert "SimulatedProgram(participants=1200" in repr(sim)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_round_trip(tmp_path, fmt):
    s = simulate_program(150, seed=12)
    paths = s.write(tmp_path / "out", format=fmt)
    assert set(paths) == set(TABLE_NAMES)
    for name, path in paths.items():
        assert path.name == f"{name}.{fmt}" and path.exists()
        back = (
            pd.read_csv(path, dtype=str, keep_default_na=False)
            if fmt == "csv"
            else pd.read_parquet(path)
        )
        assert list(back.columns) == list(s.tables[name].columns)
        assert len(back) == len(s.tables[name])
    if fmt == "csv":
        p = pd.read_csv(paths["participants"], dtype=str, keep_default_na=False)
        assert p["participant_id"].iloc[0] == "P000001"
        assert p["enrollment_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
        assert set(p["dual_diagnosis"]) == {"true", "false"}
        assert (p["release_date"] == "").sum() == s.tables["participants"][
            "release_date"
        ].isna().sum()
    else:
        e = pd.read_parquet(paths["events"])
        assert (pd.to_datetime(e["event_date"]) == s.tables["events"]["event_date"]).all()


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"relapse_mentoringg": -0.3}, r"unknown simulation parameter\(s\) 'relapse_mentoringg'"),
        ({"n_participants": 0}, r"n_participants must be an integer >= 1; got 0"),
        ({"n_participants": 10.5}, r"n_participants must be an integer >= 1; got 10.5"),
        (
            {"n_mentors": 2, "n_sites": 3},
            r"n_mentors must be at least n_sites .* n_mentors=2, n_sites=3",
        ),
        ({"start": "not a date"}, r"start must be a date such as '2024-10-01'; got 'not a date'"),
        ({"seed": -1}, r"seed must be an integer >= 0; got -1"),
        ({"quarters": 0}, r"quarters must be an integer >= 1; got 0"),
        ({"quarters": 401}, r"quarters must be at most 400 \(100 years\); got 401"),
        (
            {"release_gap_days": 4000},
            r"release_gap_days must be at most 3650 \(10 years\); got 4000",
        ),
        ({"p_match": 1.5}, r"p_match must be a probability in \[0, 1\]; got 1.5"),
        (
            {"p_risk": (0.5, 0.5, 0.5, 0.5)},
            r"p_risk must be 4 non-negative probabilities summing to 1",
        ),
        ({"relapse_scale": 0}, r"relapse_scale must be positive; got 0"),
        ({"mentor_sd": -0.1}, r"mentor_sd must be zero or positive; got -0.1"),
        ({"followup_days": 10}, r"followup_days must be a whole number of days"),
        ({"noms": {"housing": (0.1, 0, 0, 0)}}, r"noms must map employed_or_school.*got 'housing'"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        simulate_program(**kwargs)


def test_invalid_write_and_truth_queries(tmp_path, sim):
    with pytest.raises(
        InvalidParameterError, match=r"format must be one of 'csv', 'parquet'; got 'xlsx'"
    ):
        sim.write(tmp_path, format="xlsx")
    f = tmp_path / "a_file.txt"
    f.write_text("x")
    with pytest.raises(InvalidParameterError, match=r"directory must be a folder; got the file"):
        sim.write(f)
    with pytest.raises(
        InvalidParameterError, match=r"outcome must be one of 'relapse', 'rearrest', 'dropout'"
    ):
        sim.truth.log_hazard_ratio("death")
    with pytest.raises(
        InvalidParameterError, match=r"term must be one of .*; got 'group\[comparison\]'"
    ):
        sim.truth.log_hazard_ratio("relapse", "group[comparison]")
    with pytest.raises(InvalidParameterError, match=r"risk_level must be one of low, moderate"):
        sim.truth.event_probability("relapse", 365, group="comparison", risk_level="extreme")
    with pytest.raises(
        InvalidParameterError,
        match=r"group must be one of peer_mentoring, comparison; got 'treated'",
    ):
        sim.truth.event_probability("relapse", 365, group="treated")
    with pytest.raises(
        InvalidParameterError, match=r"gender must be one of male, female, nonbinary"
    ):
        sim.truth.event_probability("relapse", 365, group="comparison", gender="M")


# ---------------------------------------------------------------------------
# slow: large-sample recovery of every coefficient
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_large_sample_cox_recovers_every_coefficient():
    """n = 40,000: all log-hazard coefficients within 3 SEs, with the mentor effect as a covariate.

    lifelines ``CoxPHFitter`` (Efron); the coefficient of the mentor effect must be 1.
    """
    from lifelines import CoxPHFitter

    s = simulate_program(40_000, seed=13, contacts=False, assessments=False)
    u = s.truth.latent.set_index("participant_id")["mentor_effect"]
    for outcome in ("rearrest", "relapse"):
        df = first_event(s, outcome)
        x = design(df).assign(u=u.loc[df.index].to_numpy(), time=df["time"], event=df["event"])
        fit = CoxPHFitter().fit(x, "time", "event")
        want = pd.concat([true_coefs(s, outcome), pd.Series({"u": 1.0})])
        z = (fit.params_[want.index] - want) / fit.standard_errors_[want.index]
        assert (z.abs() < Z_TOL).all(), (outcome, z.to_dict())


@pytest.mark.slow
def test_large_simulation_scales():
    """200k participants in lean mode: ~2M events, generated in seconds."""
    import time

    t0 = time.perf_counter()
    s = simulate_program(200_000, seed=1, contacts=False, assessments=False)
    elapsed = time.perf_counter() - t0
    assert 1_500_000 < len(s.tables["events"]) < 2_500_000
    assert elapsed < 60


@pytest.mark.slow
def test_replicated_cox_estimates_are_unbiased_and_cover():
    """200 seeded replications (n = 2,000, no mentor effect): the mean Cox estimate of the
    mentoring log-HR is within 3 Monte Carlo SEs of the truth, and 95% Wald intervals cover
    it at a rate within 3 MC SEs of 0.95 (lifelines CoxPHFitter, Efron ties)."""
    from lifelines import CoxPHFitter

    reps = 200
    est = np.empty(reps)
    covered = np.empty(reps, dtype=bool)
    for r in range(reps):
        s = simulate_program(2000, seed=1000 + r, mentor_sd=0.0, contacts=False, assessments=False)
        df = first_event(s, "rearrest")
        x = design(df).assign(time=df["time"], event=df["event"])
        fit = CoxPHFitter().fit(x, "time", "event")
        b, se = fit.params_["mentoring"], fit.standard_errors_["mentoring"]
        est[r] = b
        covered[r] = abs(b - (-0.30)) <= 1.959964 * se
    mc_se = est.std(ddof=1) / np.sqrt(reps)
    assert abs(est.mean() - (-0.30)) < MC_Z * mc_se, (est.mean(), mc_se)
    assert abs(covered.mean() - 0.95) < MC_Z * np.sqrt(0.95 * 0.05 / reps), covered.mean()
