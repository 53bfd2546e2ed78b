"""Field collection as graphql-core's executor does it (the spec's CollectFields): the
fields of a selection for one object type, under one set of variable values, by response
key in order of first appearance, through inline fragments and fragment spreads whose type
condition applies, leaving out what ``@skip``/``@include`` exclude."""

from __future__ import annotations

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionNode,
    SelectionSetNode,
    is_abstract_type,
)
from graphql.execution.values import VariableValues, get_directive_values

Fields = dict[str, list[FieldNode]]


class Unsupported(Exception):
    """The document asks for something the plans do not cover."""


class FieldCollector:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def collect(self, type_name: str, sets: list[SelectionSetNode]) -> Fields:
        """The fields of ``sets`` (one field's selections, merged) on ``type_name``."""
        fields: Fields = {}
        visited: set[str] = set()
        for selection_set in sets:
            self._collect(type_name, selection_set, fields, visited)
        return fields

    def _collect(
        self, type_name: str, selection_set: SelectionSetNode, fields: Fields, visited: set[str]
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self._applies(condition.name.value, type_name):
                    self._collect(type_name, selection.selection_set, fields, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = self.fragments.get(name)
                if fragment is None:
                    raise Unsupported(name)
                if self._applies(fragment.type_condition.name.value, type_name):
                    self._collect(type_name, fragment.selection_set, fields, visited)

    def _included(self, node: SelectionNode) -> bool:
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip["if"]:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and not include["if"])

    def _applies(self, condition: str, type_name: str) -> bool:
        if condition == type_name:
            return True
        conditional = self.schema.get_type(condition)
        runtime = self.schema.get_type(type_name)
        return (
            is_abstract_type(conditional)
            and isinstance(runtime, GraphQLObjectType)
            and self.schema.is_sub_type(conditional, runtime)
        )
