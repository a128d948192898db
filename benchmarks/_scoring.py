"""Scoring throughput: exact attempt scoring against a float baseline measured in the same run."""
from __future__ import annotations

import random
import time
from pathlib import Path


def scoring_throughput(repo: Path, attempts: int = 2000, seed: int = 1) -> dict[str, float]:
    """Score ``attempts`` seeded random attempts of the shipped exam; return figures.

    Returns attempts per second for :func:`sopcoach.certification.scoring.score_attempt` (exact fractions),
    for a float baseline that only sums per-question credit as floats, and their ratio.
    """
    from sopcoach.certification.exam import draw
    from sopcoach.certification.scoring import credit, score_attempt
    from sopcoach.certification.variants import build
    from sopcoach.content.playbook import load_playbook
    from sopcoach.content.quizbank import load_bank, load_blueprint

    pb = load_playbook(repo / "playbook")
    bank = load_bank(repo / "quizzes" / "bank", pb)
    bp = load_blueprint(repo / "quizzes" / "blueprint.yaml", bank)
    rng = random.Random(seed)
    cases = []
    for i in range(attempts):
        d = draw(bank, bp, i)
        qs = [build(bank[q], pb, d.variants[q]) if q in d.variants else bank[q] for q in d.question_ids]
        responses = {}
        for q in qs:
            order = d.option_orders.get(q.id, [])
            if q.type == "single_choice":
                responses[q.id] = rng.choice(order)
            elif q.type == "multiple_choice":
                responses[q.id] = sorted(rng.sample(order, rng.randint(1, len(order))))
            elif q.type == "true_false":
                responses[q.id] = rng.random() < 0.5
            elif q.type == "numeric":
                responses[q.id] = str(rng.randint(0, 10))
            elif q.type == "ordering":
                responses[q.id] = order
        cases.append((qs, responses))

    t0 = time.perf_counter()
    for qs, responses in cases:
        score_attempt(qs, responses, bp.pass_fraction)
    exact = time.perf_counter() - t0

    t0 = time.perf_counter()
    for qs, responses in cases:
        total = sum(float(credit(q, responses.get(q.id))) for q in qs)
        _ = total / len(qs) >= 0.9
    baseline = time.perf_counter() - t0
    return {"attempts": attempts, "exact_per_s": attempts / exact, "float_per_s": attempts / baseline,
            "ratio": exact / baseline}
