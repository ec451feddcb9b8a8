import pytest

from pipeline.stages.packing import plan_packs, restore_order


def test_packs_stay_under_budget_and_cover_every_index_once():
    lengths = [300, 50, 120, 80, 500, 10, 200]
    packs = plan_packs(lengths, max_frames=400)
    assert sorted(i for p in packs for i in p) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in p) <= 400 for p in packs if len(p) > 1)
    assert packs == [[5, 1, 3, 2], [6], [0], [4]]


def test_shortest_first_and_ties_keep_input_order():
    assert plan_packs([5, 5, 1, 5], max_frames=100) == [[2, 0, 1, 3]]


def test_oversized_utterance_gets_its_own_pack():
    assert plan_packs([1000, 10, 20], max_frames=100) == [[1, 2], [0]]


def test_empty_and_invalid_budget():
    assert plan_packs([], max_frames=10) == []
    with pytest.raises(ValueError, match="max_frames"):
        plan_packs([1], max_frames=0)


def test_restore_order_inverts_the_packing():
    lengths = [30, 10, 20]
    packs = plan_packs(lengths, max_frames=35)
    results = [[f"r{i}" for i in p] for p in packs]
    assert restore_order(packs, results) == ["r0", "r1", "r2"]
