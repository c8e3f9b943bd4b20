"""Metric formulas: a tiny arithmetic language over metric names, parsed without eval.

    formula := term (("+" | "-") term)*
    term    := factor (("*" | "/") factor)*
    factor  := ("+" | "-") factor | NUMBER | NAME | "(" formula ")"

Values are exact Decimals. A missing operand or a division by zero gives None ("no value"),
never 0 and never an exception, so a derived metric over an empty day is shown as "—".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, DivisionByZero, InvalidOperation, localcontext

NAME_PATTERN = r"[a-z][a-z0-9_]*"
PRECISION = 34  # significant digits (decimal128): far beyond any figure that is shown
_TOKEN = re.compile(rf"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>{NAME_PATTERN})|(?P<op>[-+*/()]))")


class FormulaError(ValueError):
    """A formula that does not parse; `position` is the 0-based column of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at column {position + 1})")
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Number:
    """A decimal constant."""

    value: Decimal


@dataclass(frozen=True)
class Ref:
    """A reference to another metric by name."""

    name: str


@dataclass(frozen=True)
class Negate:
    """Unary minus."""

    operand: Node


@dataclass(frozen=True)
class Binary:
    """An arithmetic operation."""

    op: str
    left: Node
    right: Node


Node = Number | Ref | Negate | Binary


@dataclass(frozen=True)
class Formula:
    """A parsed formula, its source text and the metric names it uses."""

    text: str
    root: Node
    references: frozenset[str]

    def evaluate(self, values: Mapping[str, Decimal | None]) -> Decimal | None:
        """The formula's value, or None when an input is missing or a divisor is zero."""
        with localcontext() as context:
            context.prec = PRECISION
            return evaluate(self.root, values)


def parse_formula(text: str) -> Formula:
    """Parse `text`; raises FormulaError naming the column of the first problem."""
    tokens = _tokenize(text)
    parser = _Parser(tokens, len(text))
    root = parser.formula()
    if parser.index < len(tokens):
        _, value, position = tokens[parser.index]
        raise FormulaError(f"unexpected {value!r}", position)
    return Formula(text, root, frozenset(_references(root)))


def evaluate(node: Node, values: Mapping[str, Decimal | None]) -> Decimal | None:
    """Evaluate a node with exact decimal arithmetic."""
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Ref):
        return values.get(node.name)
    if isinstance(node, Negate):
        operand = evaluate(node.operand, values)
        return None if operand is None else -operand
    left, right = evaluate(node.left, values), evaluate(node.right, values)
    if left is None or right is None:
        return None
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    if right == 0:
        return None
    try:
        return left / right
    except (DivisionByZero, InvalidOperation):
        return None


def render(node: Node) -> str:
    """Canonical text of a node, fully parenthesised where precedence needs it."""
    if isinstance(node, Number):
        return format(node.value, "f")
    if isinstance(node, Ref):
        return node.name
    if isinstance(node, Negate):
        return f"-({render(node.operand)})"
    return f"({render(node.left)} {node.op} {render(node.right)})"


def _references(node: Node) -> set[str]:
    if isinstance(node, Ref):
        return {node.name}
    if isinstance(node, Negate):
        return _references(node.operand)
    if isinstance(node, Binary):
        return _references(node.left) | _references(node.right)
    return set()


Token = tuple[str, str, int]  # kind, text, position


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            offset = position + len(text[position:]) - len(text[position:].lstrip())
            raise FormulaError(f"unexpected character {text[offset]!r}", offset)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    if not tokens:
        raise FormulaError("empty formula", 0)
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token], length: int) -> None:
        self.tokens = tokens
        self.length = length
        self.index = 0

    def _peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self) -> Token:
        token = self._peek()
        if token is None:
            raise FormulaError("the formula ends too early", self.length)
        self.index += 1
        return token

    def formula(self) -> Node:
        node = self.term()
        while (token := self._peek()) is not None and token[1] in "+-" and token[0] == "op":
            self.index += 1
            node = Binary(token[1], node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while (token := self._peek()) is not None and token[1] in "*/" and token[0] == "op":
            self.index += 1
            node = Binary(token[1], node, self.factor())
        return node

    def factor(self) -> Node:
        kind, value, position = self._next()
        if kind == "number":
            return Number(Decimal(value))
        if kind == "name":
            return Ref(value)
        if value == "-":
            return Negate(self.factor())
        if value == "+":
            return self.factor()
        if value == "(":
            node = self.formula()
            closing = self._peek()
            if closing is None or closing[1] != ")":
                where = closing[2] if closing else self.length
                raise FormulaError("missing ')'", where)
            self.index += 1
            return node
        raise FormulaError(f"unexpected {value!r}", position)
