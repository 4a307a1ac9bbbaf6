"""Whole-cent arithmetic for the books. Integers only: never a float near money."""

from __future__ import annotations


def percent_of(cents: int, percent: int) -> int:
    """`percent` % of `cents`, rounded half up to the cent (15% of 333 = 50)."""
    return (cents * percent * 2 + 100) // 200


def share(total: int, part: int, whole: int) -> int:
    """floor(total x part / whole): a pro-rata share that never exceeds its total."""
    if whole <= 0:
        raise ValueError("The whole must be positive.")
    return total * part // whole


def ceil_share(total: int, part: int, whole: int) -> int:
    """ceil(total x part / whole)."""
    if whole <= 0:
        raise ValueError("The whole must be positive.")
    return -(-total * part // whole)


def release_for_burn(*, cost_left: int, remaining: int, burned: int) -> int:
    """The cost basis released by burning `burned` of a lot's `remaining` credits.

    floor(cost_left x burned / remaining); the last credit releases the rest, so a
    lot's releases always sum to exactly its cost (DESIGN.md, "the books").
    """
    if burned <= 0 or burned > remaining:
        raise ValueError(f"Cannot burn {burned} of {remaining} credits.")
    if burned == remaining:
        return cost_left
    return cost_left * burned // remaining


def display(cents: int | None) -> str:
    """$1,234.56 (negative as -$1.00); None (unknown) as an em dash."""
    if cents is None:
        return "\u2014"
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"
