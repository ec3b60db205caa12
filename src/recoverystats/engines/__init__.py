"""Execution of the measures (and validation) on DuckDB and Spark.

:mod:`recoverystats.engines.measures` holds the backend-neutral definitions of the
measures as Ibis expressions, and the sufficient statistics that the analyses take
when per-participant tables are too large to collect.
"""
