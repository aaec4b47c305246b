"""TeX: reading the mathematics people write, and writing the derivation as LaTeX and Markdown.

Reading takes a document's text and gives SymPy expressions in the contract's names (for
the auditor); writing takes a :class:`~bngraph.engine.derive.Derivation` and its
:class:`~bngraph.closedform.simplify.ClosedForm` and gives LaTeX or Markdown (for the
outputs and the report).

- ``document``: finds the equations of a Markdown, LaTeX, notebook, text or reStructuredText (Sphinx
  ``.. math::``, ``:math:``) file.
- ``overbar``: ``\\bar{v}`` read as the adjoint ∂L/∂v where the document says so.
- ``clean``: strips what surrounds a formula, checks its braces.
- ``grammar``: the lark grammar of one equation, and the builder of SymPy from its tree;
  where a LaTeX command is read.
- ``words``: a document's own names of several letters (``rms(x)_i``, ``\\text{RMS}(x)``).
- ``names``: how ``\\mu_\\mathcal{B}`` or ``\\hat{x}_i`` become the contract's names.
- ``printer``: an expression printed back in its author's notation.
- ``export``: a derivation as a LaTeX document or Markdown.

Nothing is imported here, so that writing LaTeX does not build the grammar.
"""
