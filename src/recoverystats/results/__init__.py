"""Result objects: frozen dataclasses holding a tidy table plus metadata.

Every result shares :class:`ResultMixin`, which supplies ``__repr__``,
``_repr_html_`` (the same renderer the report uses), ``to_dict()`` and
``to_markdown()``.
"""

from recoverystats.results.base import ResultMixin
from recoverystats.results.render import (
    LABELS,
    format_value,
    render_html_table,
    render_markdown_table,
)

__all__ = ["ResultMixin", "LABELS", "format_value", "render_html_table", "render_markdown_table"]
