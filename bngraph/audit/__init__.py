"""The auditor: every formula of a write-up, judged against the engine's closed form.

Takes a document (read by :mod:`bngraph.tex`) and the engine's reference formulas (a
:class:`~bngraph.closedform.simplify.ClosedForm`), and gives an
:class:`~bngraph.audit.auditor.AuditReport`: one verdict per equation, with a
counterexample and the correction for a wrong one.

- ``auditor``: the document as a whole, its report and ``bngraph audit``.
- ``judge``: what one equation defines, and its verdict.
- ``batcheval``: numbers for a parsed formula at a batch.
- ``runningavg``: running-average updates and their conventions.
"""
from bngraph.audit.auditor import AuditReport, Finding, assert_document_correct, audit_document, cli_audit

__all__ = ["AuditReport", "Finding", "assert_document_correct", "audit_document", "cli_audit"]
