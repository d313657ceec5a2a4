"""A derivation as data: steps, each an explanation in words and a formula as LaTeX and text.

``sphereviz.bounds`` builds its derivations of SphereFace's Properties 2 and 3 from these
steps (``_step``), with sympy's ``_solve_one`` and the ``_root_set`` of a polynomial; a
``Derivation`` prints as plain text and renders as Markdown/LaTeX in a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

__all__ = ["Derivation", "DerivationStep"]


# --------------------------------------------------------------------------------------------
# A derivation: steps with a plain-text and a LaTeX form
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DerivationStep:
    """One step: what is done (plain words) and the resulting formula as LaTeX and as text."""

    explanation: str
    latex: str
    text: str


@dataclass(frozen=True)
class Derivation:
    """A titled list of steps; renders as LaTeX in a notebook and as plain text in a terminal."""

    title: str
    steps: tuple[DerivationStep, ...]

    def as_pairs(self) -> list[tuple[str, str]]:
        """[(plain text, LaTeX)] per step: explanation plus formula in each form."""
        return [(f"{s.explanation}\n    {s.text}", s.latex) for s in self.steps]

    def as_text(self) -> str:
        lines = [self.title, "=" * len(self.title)]
        for number, step in enumerate(self.steps, start=1):
            lines += [f"{number:2d}. {step.explanation}", f"      {step.text}"]
        return "\n".join(lines)

    def as_latex(self) -> str:
        rows = [rf"\textbf{{{_latex_text(self.title)}}}"]
        for number, step in enumerate(self.steps, start=1):
            rows += [rf"\text{{{number}. {_latex_text(step.explanation)}}}", rf"\quad {step.latex}"]
        return r"\begin{array}{l}" + r" \\ ".join(rows) + r"\end{array}"

    def _repr_latex_(self) -> str:
        return f"$${self.as_latex()}$$"

    def as_markdown(self) -> str:
        """Numbered steps in words, each followed by its formula as display math."""
        lines = [f"**{self.title}**", ""]
        for number, step in enumerate(self.steps, start=1):
            lines += [f"{number}. {step.explanation}", "", f"   $${step.latex}$$", ""]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        # Jupyter prefers this to the LaTeX form: the explanations wrap like normal text.
        return self.as_markdown()

    def math(self) -> list:
        """One ``IPython.display.Math`` per step's formula, to ``display(*derivation.math())``."""
        from IPython.display import Math

        return [Math(step.latex) for step in self.steps]

    def __str__(self) -> str:
        return self.as_text()


def _latex_text(text: str) -> str:
    for char in "\\{}$&#%_^":
        text = text.replace(char, "\\" + char if char not in "\\^" else r"\textasciicircum{}")
    return text


def _plain(expression) -> str:
    if isinstance(expression, sp.Equality):
        return f"{_plain(expression.lhs)} = {_plain(expression.rhs)}"
    if isinstance(expression, sp.core.relational.Relational):
        return f"{_plain(expression.lhs)} {expression.rel_op} {_plain(expression.rhs)}"
    if isinstance(expression, sp.FiniteSet):
        return "{" + ", ".join(_plain(element) for element in expression) + "}"
    if isinstance(expression, str):
        return expression
    if expression.is_number:
        return sp.sstr(expression, order="none")  # 2 + sqrt(3), as the paper writes it
    return sp.sstr(expression)


def _step(explanation: str, *parts) -> DerivationStep:
    """``parts``: sympy objects, or (latex, text) pairs for connectives such as ⇒."""
    latex = " ".join(part[0] if isinstance(part, tuple) else sp.latex(part) for part in parts)
    text = " ".join(part[1] if isinstance(part, tuple) else _plain(part) for part in parts)
    return DerivationStep(explanation, latex, text)


def _root_set(roots) -> tuple[str, str]:
    """The roots, in the given order, as a (LaTeX, text) set."""
    latex = r"\left\{" + ", ".join(sp.latex(root, order="none") for root in roots) + r"\right\}"
    return latex, "{" + ", ".join(_plain(root) for root in roots) + "}"


IMPLIES = (r"\;\Longrightarrow\;", "=>")
IFF = (r"\;\Longleftrightarrow\;", "<=>")


def _solve_one(equation: sp.Equality, unknown: sp.Symbol) -> sp.Expr:
    (solution,) = sp.solve(equation, unknown)
    return sp.factor(solution)
