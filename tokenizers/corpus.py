"""A corpus that every Python installation carries: the Python reference documentation.

``pydoc_data.topics`` holds the text that ``help("if")`` shows, about 465 KB of English
technical prose with code samples. It makes a reproducible training set with no download.
"""

from __future__ import annotations


def default_corpus() -> str:
    """Python's reference documentation topics, joined by newlines."""
    import pydoc_data.topics

    return "\n".join(pydoc_data.topics.topics.values())
