"""Metric series read back downsampled: at most ``max_points`` real points, in order, and
the global minimum and maximum always among them; summaries equal a brute-force count.

Random series (seeded, so a failure is reproducible) are written through the reporting
endpoint in batches of random sizes, then read through ``GET metrics/{id}`` and compared
with what plain Python computes from the same numbers.
"""

import math
import random

import pytest

from experiments.models import Role
from tests.agents.conftest import Agent
from tests.factories import api_client, started_experiment

pytestmark = pytest.mark.django_db

SEEDS = range(8)


def send_series(agent: Agent, name: str, values: list[float], rng: random.Random, *, steps=None) -> None:
    """Post the series in batches of 1 to 1,000 points."""
    i = 0
    while i < len(values):
        size = rng.randint(1, 1000)
        batch = []
        for j in range(i, min(i + size, len(values))):
            point = {"name": name, "value": values[j]}
            if steps is not None:
                point["step"] = steps[j]
            batch.append(point)
        response = agent.post("metrics", {"points": batch})
        assert response.status_code == 200, response.json()
        i += size


def random_series(rng: random.Random, length: int) -> list[float]:
    shape = rng.choice(["walk", "noise", "spikes", "flat", "ramp"])
    if shape == "walk":
        value, values = 0.0, []
        for _ in range(length):
            value += rng.gauss(0, 1)
            values.append(round(value, 6))
        return values
    if shape == "noise":
        return [rng.uniform(-1e6, 1e6) for _ in range(length)]
    if shape == "spikes":
        values = [rng.uniform(0, 1) for _ in range(length)]
        for _ in range(rng.randint(1, 3)):
            values[rng.randrange(length)] = rng.choice([-1, 1]) * rng.uniform(50, 100)
        return values
    if shape == "flat":
        return [3.0] * length
    return [float(i) for i in range(length)]


@pytest.fixture
def owner_and_agent(alice):
    _experiment, issued = started_experiment(alice, agents=1)
    return alice, Agent(run=issued[0].run, token=issued[0].token)


def read(user, experiment_id: str, **params) -> dict:
    response = api_client(user).get(f"/api/research/metrics/{experiment_id}", params)
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.mark.parametrize("seed", SEEDS)
def test_downsampling_keeps_real_points_in_order_and_the_global_extremes(owner_and_agent, seed):
    owner, agent = owner_and_agent
    rng = random.Random(seed)
    length = rng.choice([rng.randint(1, 60), rng.randint(60, 1500), rng.randint(1500, 4000)])
    values = random_series(rng, length)
    send_series(agent, "loss", values, rng)
    stored = {(step, value) for step, value in enumerate(values)}

    for max_points in sorted({2, 3, rng.randint(2, 40), rng.randint(40, 500), 1000}):
        body = read(owner, agent.run.experiment.public_id, max_points=max_points)
        points = body["series"][agent.id]["loss"]

        assert len(points) <= max_points
        assert all((p["step"], p["value"]) in stored for p in points), "only real points"
        steps = [p["step"] for p in points]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        kept = [p["value"] for p in points]
        assert min(values) in kept, f"the global minimum is lost at max_points={max_points}"
        assert max(values) in kept, f"the global maximum is lost at max_points={max_points}"
        if length <= max_points:
            assert kept == values
            assert body["downsampled"] is False
        else:
            assert body["downsampled"] is True
        assert all(p["timestamp"].endswith("Z") for p in points)


@pytest.mark.parametrize("seed", SEEDS)
def test_summaries_equal_a_brute_force_computation(owner_and_agent, seed):
    owner, agent = owner_and_agent
    rng = random.Random(1000 + seed)
    series = {name: random_series(rng, rng.randint(1, 2500)) for name in ("loss", "accuracy", "reward")}
    for name, values in series.items():
        send_series(agent, name, values, rng)

    summary = read(owner, agent.run.experiment.public_id, max_points=50)["summary"][agent.id]

    assert set(summary) == set(series)
    for name, values in series.items():
        assert summary[name]["count"] == len(values)
        assert summary[name]["min"] == min(values)
        assert summary[name]["max"] == max(values)
        assert summary[name]["last"] == values[-1]
        assert math.isclose(summary[name]["avg"], sum(values) / len(values), rel_tol=1e-9, abs_tol=1e-6)


def test_each_bucket_keeps_its_extremes_so_every_spike_survives(owner_and_agent):
    """Spikes far apart each fall in their own bucket and each survives."""
    owner, agent = owner_and_agent
    values = [0.0] * 4000
    for position, height in [(100, 9.0), (1200, -7.0), (2500, 8.0), (3900, -6.0)]:
        values[position] = height
    send_series(agent, "loss", values, random.Random(7))

    points = read(owner, agent.run.experiment.public_id, max_points=40)["series"][agent.id]["loss"]

    kept = {p["step"]: p["value"] for p in points}
    for position, height in [(100, 9.0), (1200, -7.0), (2500, 8.0), (3900, -6.0)]:
        assert kept.get(position) == height


def test_series_with_explicit_steps_are_returned_in_step_order(owner_and_agent):
    owner, agent = owner_and_agent
    rng = random.Random(3)
    steps = list(range(0, 3000, 3))
    values = [rng.uniform(0, 1) for _ in steps]
    send_series(agent, "reward", values, rng, steps=steps)

    points = read(owner, agent.run.experiment.public_id, max_points=100)["series"][agent.id]["reward"]

    assert [p["step"] for p in points] == sorted(p["step"] for p in points)
    assert {p["step"] for p in points} <= set(steps)
    assert max(values) in [p["value"] for p in points]


def test_name_and_run_filters_return_only_that_series(alice, bob):
    _experiment, issued = started_experiment(alice, agents=2, members={bob: Role.VIEWER})
    first, second = (Agent(run=i.run, token=i.token) for i in issued)
    for agent in (first, second):
        agent.post("metrics", {"points": [{"name": "loss", "value": 1.0}, {"name": "acc", "value": 0.5}]})
    experiment_id = first.run.experiment.public_id

    by_name = read(bob, experiment_id, name="loss")
    by_run = read(bob, experiment_id, run=second.id)
    both = read(bob, experiment_id, run=second.id, name="acc")

    assert {run: set(series) for run, series in by_name["series"].items()} == {
        first.id: {"loss"},
        second.id: {"loss"},
    }
    assert {run: set(series) for run, series in by_name["summary"].items()} == {
        first.id: {"loss"},
        second.id: {"loss"},
    }
    assert set(by_run["series"]) == {second.id}
    assert set(by_run["series"][second.id]) == {"loss", "acc"}
    assert both["series"] == {second.id: {"acc": both["series"][second.id]["acc"]}}
    assert both["summary"][second.id]["acc"]["count"] == 1
    assert read(bob, experiment_id, name="nothing")["series"] == {}
