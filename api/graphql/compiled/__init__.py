"""Compiled reads: known query operations answered straight from the read rows, with the
same bytes as the Strawberry executor and after the same limits.

:mod:`.plan` builds a plan from a parsed and validated document; :mod:`.execute` runs it
(:class:`CompiledReads`, used by api/http/view.py); :mod:`.sources` says where each
field's value comes from and :mod:`.roots` what each root field reads and checks.
Whatever a plan does not cover runs on Strawberry, per operation.
"""

from api.graphql.compiled.execute import CompiledReads

__all__ = ["CompiledReads"]
