"""What a ledger entry means, in the words of the user it belongs to.

`describe(entries)` sets `human_reason` on each entry: "Bought Starter package",
"Generated “Night Drive”", "Refund of Starter package: 30 unused credits removed".
The credits page, `GET /api/credits/history` and the CSV export all read it, so an
entry is named the same everywhere. The names come from the entry itself, the lot it
touched (its package and source), the spend a refund gives back, and the track or
purchase a spend paid for: a fixed handful of queries for any number of entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.apps import apps

from credits.models import EntryKind, LedgerEntry, LedgerEntryLot, LotSource

# The `reason` a spend is written with (subscriptions.charge_generation, purchases.buy).
GENERATION = "track_generation"
TRACK_PURCHASE = "track_purchase"
PACKAGE_REFUND_KEY = "void:refund:"


def _credits(n: int, adjective: str = "") -> str:
    return f"{n} {adjective}credit{'' if n == 1 else 's'}"


@dataclass
class _Refs:
    """What the entries point at, loaded once for the whole batch."""

    lot: dict[int, object] = field(default_factory=dict)  # entry id -> its first lot
    spend: dict[int, LedgerEntry] = field(default_factory=dict)  # refund id -> its spend
    track_title: dict[int, str] = field(default_factory=dict)  # spend id -> track title
    bought: dict[int, tuple[str, str]] = field(default_factory=dict)  # spend id -> (title, artist)


def _load(entries: Sequence[LedgerEntry]) -> _Refs:
    refs = _Refs()
    ids = [e.pk for e in entries]
    if not ids:
        return refs
    for link in (
        LedgerEntryLot.objects.filter(entry_id__in=ids)
        .select_related("lot__package")
        .order_by("entry_id", "id")
    ):
        refs.lot.setdefault(link.entry_id, link.lot)
    reversed_ids = [e.reverses_id for e in entries if e.reverses_id]
    if reversed_ids:
        refs.spend = {spend.pk: spend for spend in LedgerEntry.objects.filter(pk__in=reversed_ids)}
    spends = [e for e in entries if e.kind == EntryKind.SPEND] + list(refs.spend.values())
    generated = [e.pk for e in spends if e.reason == GENERATION]
    if generated:
        track_model = apps.get_model("tracks", "Track")
        refs.track_title = dict(
            track_model.objects.filter(ledger_entry_id__in=generated).values_list(
                "ledger_entry_id", "title"
            )
        )
    bought = [e.pk for e in spends if e.reason == TRACK_PURCHASE]
    if bought:
        purchase_model = apps.get_model("purchases", "Purchase")
        refs.bought = {
            p.ledger_entry_id: (p.track.title, p.track.creator.display_name)
            for p in purchase_model.objects.filter(ledger_entry_id__in=bought).select_related(
                "track__creator"
            )
        }
    return refs


def _package_name(lot) -> str | None:
    if lot is None or lot.package_id is None or lot.source == LotSource.SIGNUP:
        return None
    return lot.package.name


def _spent_on(spend: LedgerEntry, refs: _Refs) -> str:
    if spend.reason == GENERATION:
        title = refs.track_title.get(spend.pk)
        return f"Generated \u201c{title}\u201d" if title else "Generated a track"
    if spend.reason == TRACK_PURCHASE:
        if spend.pk in refs.bought:
            title, artist = refs.bought[spend.pk]
            return f"Bought \u201c{title}\u201d from {artist}"
        return "Bought a track"
    return spend.memo or "Spent credits"


def _given_back(refund: LedgerEntry, refs: _Refs) -> str:
    spend = refs.spend.get(refund.reverses_id)
    if spend is None:
        return refund.memo or "Credits given back"
    if spend.reason == GENERATION:
        title = refs.track_title.get(spend.pk)
        what = f" of \u201c{title}\u201d" if title else ""
        return f"Given back: generation{what} failed"
    if spend.reason == TRACK_PURCHASE and spend.pk in refs.bought:
        title, artist = refs.bought[spend.pk]
        return f"Refund of \u201c{title}\u201d from {artist}: credits returned"
    return f"Given back: {_spent_on(spend, refs)}"


def reason_for(entry: LedgerEntry, refs: _Refs) -> str:
    """The human reason of one entry (use `describe`, which loads `refs`)."""
    lot = refs.lot.get(entry.pk)
    package = _package_name(lot)
    unused = _credits(abs(entry.amount), "unused ")
    if entry.kind == EntryKind.ADJUST:
        verb = "Added" if entry.amount > 0 else "Removed"
        return f"{verb} by SoundStudio staff: {entry.reason}"
    if entry.kind == EntryKind.GRANT:
        if lot is not None and lot.source == LotSource.SIGNUP:
            return "Free welcome credits"
        if package and lot.source == LotSource.PACKAGE:
            return f"Bought {package} package"
        if lot is not None and lot.source == LotSource.ADMIN:
            return "Added by SoundStudio" + (f": {entry.reason}" if entry.reason else "")
        return entry.memo or "Credits added"
    if entry.kind == EntryKind.SPEND:
        return _spent_on(entry, refs)
    if entry.kind == EntryKind.REFUND:
        return _given_back(entry, refs)
    if entry.kind == EntryKind.EXPIRE:
        if lot is not None and lot.source == LotSource.SIGNUP:
            return f"Expired: {unused} of your welcome gift"
        return f"Expired: {unused} of {package} package" if package else f"Expired: {unused}"
    if entry.kind == EntryKind.VOID:
        if entry.idempotency_key.startswith(PACKAGE_REFUND_KEY):
            of = f" of {package} package" if package else ""
            return f"Refund{of}: {unused} removed"
        return f"Removed: {entry.reason}" if entry.reason else f"{unused} removed"
    return entry.get_kind_display()


def describe(entries: Sequence[LedgerEntry]) -> Sequence[LedgerEntry]:
    """Set `human_reason` on every entry; return them."""
    refs = _load(entries)
    for entry in entries:
        entry.human_reason = reason_for(entry, refs)
    return entries
