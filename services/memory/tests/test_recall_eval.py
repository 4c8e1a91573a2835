"""The LoCoMo evaluation takes any file of that schema: evidence ids are normalised or
dropped (and counted), and a tiny synthetic conversation runs end to end through the real
path (ThreadStore → job stream → worker handlers → Chroma → SearchMemories over gRPC)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bench.recall.locomo import load, normalize_dia_id  # noqa: E402
from bench.recall.run import main  # noqa: E402

TINY = [
    {
        "sample_id": "tiny-1",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bo",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a parrot called Kiwi!"},
                {
                    "speaker": "Bo",
                    "dia_id": "D1:2",
                    "text": "Lovely. I started learning the cello.",
                },
                {"speaker": "Ann", "dia_id": "D1:3", "text": "My sister moved to Denver."},
            ],
            "session_2_date_time": "10:00 am on 20 June, 2023",
            "session_2": [
                {
                    "speaker": "Bo",
                    "dia_id": "D2:1",
                    "text": "I ran a marathon in Boston last week.",
                },
                {
                    "speaker": "Ann",
                    "dia_id": "D2:2",
                    "text": "Wow! I baked a lemon cake.",
                    "blip_caption": "a photo of a yellow cake",
                },
            ],
        },
        "observation": {
            "session_1_observation": {"Ann": [["Ann has a parrot named Kiwi.", "D1:1"]]}
        },
        "qa": [
            {
                "question": "What is the name of Ann's parrot?",
                "answer": "Kiwi",
                "evidence": ["D1:1"],
                "category": 4,
            },
            {
                "question": "Where did Bo run a marathon?",
                "answer": "Boston",
                "evidence": ["D:2:1", "D9:99"],
                "category": 4,
            },
            {
                "question": "Where does Ann's sister live?",
                "answer": "Denver",
                "evidence": ["D1:03"],
                "category": 1,
            },
            {"question": "Adversarial", "adversarial_answer": "x", "evidence": [], "category": 5},
        ],
    }
]


def test_evidence_ids_are_normalised_or_dropped(tmp_path):
    assert normalize_dia_id("D:11:26") == "D11:26"
    assert normalize_dia_id("D30:05") == "D30:5"
    assert normalize_dia_id("garbage") is None
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    [sample] = load(path)
    assert [q.evidence for q in sample.questions[:3]] == [["D1:1"], ["D2:1"], ["D1:3"]]
    assert sample.evidence_dropped == 1 and sample.evidence_fixed == 2
    assert sample.sessions[1].turns[1].text.endswith("[shares a photo: a photo of a yellow cake]")


def test_tiny_file_runs_end_to_end(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    assert main(["--data", str(path), "--out", str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "recall.json").read_text())
    assert res["overall"]["questions"] == 3
    assert res["overall"]["recall@5"] == 1.0  # three memories, each found
    assert res["evidence_ids_dropped"] == 1 and res["memories_indexed"] >= 5
    assert "| **overall 1-4** | 3 |" in (tmp_path / "out" / "recall.md").read_text()
