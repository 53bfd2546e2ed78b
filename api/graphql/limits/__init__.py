"""Query limits with clear errors, checked before anything runs.

* the size of the text (bytes, before parsing) and in tokens;
* depth, aliases and operations per document, and introspection by its own rule
  (depth, number of ``__schema``/``__type`` fields, cost): validation rules, so checked
  once per document and cached with its validation (:mod:`api.graphql.limits.rules`);
* the cost of the data, with the request's variables (:class:`CostLimit`).

How a document is measured, each fragment once: :mod:`api.graphql.limits.shape`. The cache of
parsed and validated documents, bounded by bytes: :mod:`api.graphql.limits.documents`.
"""

from api.graphql.limits.documents import DocumentCache, Documents
from api.graphql.limits.rules import CostLimit, Limits, limit_error, validation_rules

__all__ = ["CostLimit", "DocumentCache", "Documents", "Limits", "limit_error", "validation_rules"]
