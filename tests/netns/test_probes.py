"""The prober log's reading (no network needed): first answers, healing after an outage, single
losses, each direction, loops."""

from __future__ import annotations

from pathlib import Path

from netns.probes import Probes


def _log(path: Path, answered: list[bool], start: float = 100.0, hop: int = 61) -> Probes:
    """Pair (0, 1) probed every 0.1 s from ``start``; answered[i] says whether probe i came back
    (and arrived at the destination), 10 ms after it was sent."""
    lines = []
    for seq, ok in enumerate(answered):
        t = start + seq * 0.1
        lines.append(f"s {t:.4f} 0 1 {seq}")
        if ok:
            lines.append(f"q {t + 0.005:.4f} 0 1 {seq} {hop + 1}")
            lines.append(f"r {t + 0.01:.4f} 0 1 {seq} {hop}")
    path.write_text("\n".join(lines) + "\n")
    probes = Probes(path)
    probes.read()
    return probes


def test_first_answer_and_healing_after_an_outage(tmp_path: Path) -> None:
    answered = [False] * 5 + [True] * 20 + [False] * 10 + [True] * 30
    probes = _log(tmp_path / "p.log", answered)
    assert probes.all_answered([(0, 1)]) == 100.51
    assert probes.all_answered([(0, 1), (1, 0)]) is None  # (1, 0) never probed
    now = 100 + len(answered) * 0.1 + 2
    # After the event at 102.0 the pair was out for probes 25..34 and came back with probe 35.
    assert probes.healed((0, 1), 102.0, now) == 103.51
    assert probes.healed((0, 1), 102.0, now, one_way=True) == 103.505
    assert probes.lost([(0, 1)], 102.0, now) == 10
    # Judged while the outage was still going on: not healed.
    assert probes.healed((0, 1), 102.0, 104.0) is None


def test_a_single_lost_probe_is_not_an_outage(tmp_path: Path) -> None:
    answered = [True] * 10 + [False, False] + [True] * 10 + [False] + [True] * 10
    probes = _log(tmp_path / "p.log", answered)
    assert probes.healed((0, 1), 100.0, 110.0) == 100.0
    assert probes.all_healed([(0, 1)], 100.0, 110.0) == 100.0


def test_pending_probes_are_not_judged_yet(tmp_path: Path) -> None:
    answered = [True] * 10 + [False] * 5  # the last five may still be answered
    probes = _log(tmp_path / "p.log", answered)
    assert probes.healed((0, 1), 100.0, 101.5) == 100.0


def test_loops_show_as_time_exceeded_or_paths_longer_than_the_network(tmp_path: Path) -> None:
    probes = _log(tmp_path / "p.log", [True] * 3, hop=55)  # 8 links back
    assert probes.longest_path(0, 1e12) == 8
    with open(tmp_path / "p.log", "a") as f:
        f.write("x 200.0 0 1 7 3 0\nx 201.0 0 1 8 1 0\nr 202.0 0 1 9")  # a line still being written
    probes.read()
    assert probes.time_exceeded(0, 1e12) == 1
    assert probes.unreachable(0, 1e12) == 1
    assert 9 not in probes.pairs[0, 1].replies
