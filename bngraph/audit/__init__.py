"""The auditor: every formula of a write-up, judged against the engine's closed form.

Takes a document (read by :mod:`bngraph.tex`) and the engine's reference formulas (a
:class:`~bngraph.closedform.simplify.ClosedForm`), and gives an
:class:`~bngraph.audit.auditor.AuditReport`: one verdict per equation, with a
counterexample and the correction for a wrong one.

- ``auditor``: the document as a whole, its report and ``bngraph audit``.
- ``context``: what the document binds and defines, and where (its m, its numbers, its helpers,
  which index of ``x_{i,j}`` runs over the batch).
- ``sections``: which layer each part of a write-up is about, by its headings.
- ``verdicts``: the verdicts, a judgement, a counterexample, the document's context.
- ``judge``: what one equation defines, and its verdict.
- ``compare``: one right side against its reference, under every plausible reading; the slip
  that explains a wrong one.
- ``batcheval``: numbers for a parsed formula at a batch; ``compiled``: a formula compiled once into
  closures for it; ``dual``: dual numbers for the partials
  a formula names.
- ``runningavg``: running-average updates and their conventions.
- ``adjoints``: ∂L/∂c of a name c of the document's own (a staged graph), whole or one path's share.
- ``letters``: a document's own letters for the layer's families (``n_i`` for x̂, ``X_i`` for x_i, ``h`` whose
  mean μ is), a staged pass's own input and output, and a value at step t from step t − 1 read as a running
  value's update.
"""
from bngraph.audit.auditor import AuditReport, Finding, assert_document_correct, audit_document, cli_audit

__all__ = ["AuditReport", "Finding", "assert_document_correct", "audit_document", "cli_audit"]
