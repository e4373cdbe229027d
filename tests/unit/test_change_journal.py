"""The sandbox's change feed: what the replicator reads to replicate every write."""

from __future__ import annotations

from mldr.sandbox.motoserver import ChangeJournal


def _fill(journal: ChangeJournal, n: int) -> None:
    for i in range(n):
        journal.append(bucket="b", key=f"k{i}", method="PUT")


def test_a_reader_gets_every_change_after_its_position_in_order() -> None:
    journal = ChangeJournal(limit=100)
    _fill(journal, 30)
    page = journal.since(12, limit=5)
    assert [e["seq"] for e in page["events"]] == [13, 14, 15, 16, 17]
    assert [e["key"] for e in page["events"]] == ["k12", "k13", "k14", "k15", "k16"]
    assert (page["head"], page["truncated"]) == (30, False)
    assert journal.since(30)["events"] == []


def test_a_reader_behind_the_bounded_journal_is_told_it_missed_changes() -> None:
    journal = ChangeJournal(limit=8)
    _fill(journal, 25)
    behind = journal.since(0)
    assert behind["truncated"] is True  # the replicator then rescans the buckets
    seqs = [e["seq"] for e in behind["events"]]
    assert seqs == list(range(seqs[0], 26)) and len(seqs) >= 8  # the newest kept, none skipped
    caught_up = journal.since(20)
    assert caught_up["truncated"] is False
    assert [e["seq"] for e in caught_up["events"]] == [21, 22, 23, 24, 25]
