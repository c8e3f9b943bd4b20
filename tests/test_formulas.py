"""The formula language: exact, safe, and 'no value' instead of division errors."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpi_engine.formulas import (
    Binary,
    FormulaError,
    Negate,
    Node,
    Number,
    Ref,
    parse_formula,
    render,
)

NAMES = ["gmv", "orders", "ad_spend", "views", "refund_amount"]


def test_everyday_formulas() -> None:
    values = {
        "gmv": Decimal("1234.50"),
        "orders": Decimal(41),
        "ad_spend": Decimal("300"),
        "views": Decimal(0),
    }
    aov = parse_formula("gmv / orders").evaluate(values)
    assert aov is not None and round(aov, 20) == Decimal("30.10975609756097560976")
    acos = parse_formula("ad_spend / gmv * 100").evaluate(values)
    assert acos is not None and round(acos, 10) == Decimal("24.3013365735")
    assert (
        parse_formula("gmv / views * 1000").evaluate(values) is None
    )  # division by zero: no value
    assert parse_formula("gmv - refund_amount").evaluate(values) is None  # missing input: no value
    assert parse_formula("-(gmv - 1234.5) + 2 * 3").evaluate(values) == 6
    assert parse_formula("gmv/orders").references == {"gmv", "orders"}


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "empty formula", 1),
        ("gmv /", "the formula ends too early", 6),
        ("gmv * (orders + 1", "missing ')'", 18),
        ("gmv orders", "unexpected 'orders'", 5),
        ("gmv ^ 2", "unexpected character '^'", 5),
        ("__import__('os')", "unexpected character '_'", 1),
        ("GMV / orders", "unexpected character 'G'", 1),
        (") + 1", "unexpected ')'", 1),
    ],
)
def test_errors_name_the_column(text: str, message: str, column: int) -> None:
    with pytest.raises(FormulaError) as caught:
        parse_formula(text)
    assert caught.value.message == message
    assert caught.value.position + 1 == column


def nodes() -> st.SearchStrategy[Node]:
    leaves = st.one_of(
        st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(Number),
        st.sampled_from(NAMES).map(Ref),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            children.map(Negate),
            st.tuples(st.sampled_from("+-*/"), children, children).map(lambda t: Binary(*t)),
        ),
        max_leaves=12,
    )


def exact(node: Node, values: dict[str, Fraction | None]) -> Fraction | None:
    """An independent evaluation with Fractions."""
    if isinstance(node, Number):
        return Fraction(node.value)
    if isinstance(node, Ref):
        return values.get(node.name)
    if isinstance(node, Negate):
        inner = exact(node.operand, values)
        return None if inner is None else -inner
    left, right = exact(node.left, values), exact(node.right, values)
    if left is None or right is None:
        return None
    if node.op == "/":
        return None if right == 0 else left / right
    return {"+": left + right, "-": left - right, "*": left * right}[node.op]


values_strategy = st.fixed_dictionaries(
    {name: st.one_of(st.none(), st.integers(min_value=0, max_value=10**7)) for name in NAMES}
)


@given(nodes(), values_strategy)
def test_rendered_formulas_parse_back_and_agree_with_exact_maths(
    node: Node, raw: dict[str, int | None]
) -> None:
    formula = parse_formula(render(node))
    assert formula.root == _canonical(node)
    result = formula.evaluate({k: None if v is None else Decimal(v) for k, v in raw.items()})
    expected = exact(node, {k: None if v is None else Fraction(v) for k, v in raw.items()})
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert abs(Fraction(result) - expected) <= abs(expected) * Fraction(1, 10**25) + Fraction(
            1, 10**25
        )


def _canonical(node: Node) -> Node:
    # Rendering writes numbers in plain notation; parsing gives the same Decimal value.
    if isinstance(node, Number):
        return Number(Decimal(format(node.value, "f")))
    if isinstance(node, Negate):
        return Negate(_canonical(node.operand))
    if isinstance(node, Binary):
        return Binary(node.op, _canonical(node.left), _canonical(node.right))
    return node


@given(st.text(max_size=30))
def test_any_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        formula = parse_formula(text)
    except FormulaError as error:
        position = error.position
    else:
        formula.evaluate({})
        position = 0
    assert 0 <= position <= len(text)
