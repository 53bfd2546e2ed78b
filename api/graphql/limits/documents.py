"""Parsed and validated documents, kept by query text and bounded by the memory they hold.

Strawberry's ParserCache and ValidationCache count entries, not bytes: a thousand large
documents would all stay. Here a document is weighed by its text and its syntax tree
(estimated from its token count), and the least recently used go first once the budget
is spent. Documents longer than the query size limit are never parsed (graphql-core's
``max_source_length``), so never kept either.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from collections.abc import Collection, Iterator
from typing import Any, cast

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    Lexer,
    Source,
    TokenKind,
    parse,
    validate,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

# Bytes of syntax tree per token, measured with graphql-core's parser (with locations).
TREE_BYTES_PER_TOKEN = 600
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


def error_code_of(error: GraphQLError) -> str | None:
    code = (error.extensions or {}).get("code")
    return code if isinstance(code, str) else None


def tagged(error: GraphQLError, code: str) -> GraphQLError:
    """``error`` with ``extensions.code`` set to ``code`` unless it has one already (the
    limits' rules give their own)."""
    if error_code_of(error) is None:
        error.extensions = {**(error.extensions or {}), "code": code}
    return error


def over_limits(query: str, error: GraphQLSyntaxError, max_tokens: int, max_length: int) -> bool:
    """Whether parsing ``query`` stopped at a size limit rather than at a mistake: it is
    longer than ``max_length`` code points, or the token where it stopped is past the
    first ``max_tokens`` (graphql-core counts comments as tokens and raises at the first
    token over the limit; its errors have no kind of their own to tell)."""
    if len(query) > max_length:
        return True
    stopped_at = next(iter(error.positions or ()), len(query))
    lexer = Lexer(Source(query))
    count = 0
    start = 0
    try:
        while count <= max_tokens:
            token = lexer.read_next_token(start)
            if token.kind is TokenKind.EOF or token.start > stopped_at:
                return False
            count += 1
            start = token.end
    except GraphQLError:  # a character no token starts with: the mistake came first
        return False
    return True


@dataclasses.dataclass(slots=True)
class _Entry:
    document: DocumentNode
    weight: int
    errors: list[GraphQLError] | None = None  # validation, once done
    # What the compiled read path made of the document, by operation name.
    plans: dict[str | None, Any] = dataclasses.field(default_factory=dict)


class Documents:
    """Least recently used first out, bounded by count and by estimated bytes."""

    def __init__(self, *, max_bytes: int, max_entries: int = 1024) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def parse(self, query: str, max_tokens: int, max_source_length: int) -> DocumentNode:
        """The document of ``query``, parsed once; GraphQLError if it does not parse."""
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
            return entry.document
        document = parse(query, max_tokens=max_tokens, max_source_length=max_source_length)
        token_count: int = getattr(document, "token_count", len(query))
        weight = 2 * len(query) + TREE_BYTES_PER_TOKEN * token_count
        if weight <= self.max_bytes:
            self._entries[query] = _Entry(document, weight)
            self.bytes += weight
            while self.bytes > self.max_bytes or len(self._entries) > self.max_entries:
                _, evicted = self._entries.popitem(last=False)
                self.bytes -= evicted.weight
        return document

    def validated(self, query: str) -> tuple[DocumentNode, dict[str | None, Any]] | None:
        """The document of ``query`` and its memo of plans, if it is kept here and has been
        validated without errors (with the schema's rules, limits included); else None."""
        entry = self._entries.get(query)
        if entry is None or entry.errors is None or entry.errors:
            return None
        self._entries.move_to_end(query)
        return entry.document, entry.plans

    def validate(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        rules: Collection[type[ASTValidationRule]],
        *,
        hide_suggestions: bool,
    ) -> list[GraphQLError]:
        """The validation errors of a document from :meth:`parse`, found once (the rules
        and options are the schema's own, the same for every call)."""
        entry = self._entries.get(query)
        if entry is not None and entry.document is document and entry.errors is not None:
            return entry.errors
        errors = [
            tagged(error, VALIDATION_FAILED)
            for error in validate(
                schema,
                document,
                (*rules, MaybeNullValidationRule, OneOfInputValidationRule),
                hide_suggestions=hide_suggestions,
            )
        ]
        if entry is not None and entry.document is document:
            entry.errors = errors
        return errors


class DocumentCache(SchemaExtension):
    """Parses and validates through :class:`Documents`, with the size limits.

    ``hide_suggestions``: validation messages without "Did you mean ...?" (in prod, where
    introspection is off, they would map the schema)."""

    def __init__(
        self,
        documents: Documents,
        *,
        max_tokens: int,
        max_query_bytes: int,
        hide_suggestions: bool,
    ) -> None:
        self.documents = documents
        self.max_tokens = max_tokens
        self.max_query_bytes = max_query_bytes
        self.hide_suggestions = hide_suggestions

    def on_operation(self) -> Iterator[None]:
        # Also what Strawberry's own parse uses, should the document not come from here.
        options = cast("dict[str, Any]", self.execution_context.parse_options)
        options.update(max_tokens=self.max_tokens, max_source_length=self.max_query_bytes)
        yield

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is None and ctx.query:
            # If it does not parse, Strawberry parses it again and reports the error.
            with contextlib.suppress(GraphQLError):
                ctx.graphql_document = self.documents.parse(
                    ctx.query, self.max_tokens, self.max_query_bytes
                )
        yield
        # Strawberry's parse failed (it reports the error as it is): say which kind.
        for error in ctx.pre_execution_errors or ():
            if isinstance(error, GraphQLSyntaxError) and error_code_of(error) is None:
                too_large = over_limits(
                    ctx.query or "", error, self.max_tokens, self.max_query_bytes
                )
                tagged(error, QUERY_TOO_LARGE if too_large else PARSE_FAILED)

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None and ctx.pre_execution_errors is None:
            ctx.pre_execution_errors = self.documents.validate(
                ctx.schema._schema,
                ctx.query or "",
                document,
                ctx.validation_rules,
                hide_suggestions=self.hide_suggestions,
            )
        yield
