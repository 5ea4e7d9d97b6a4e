"""Property tests of the retry loop, driven directly through ``stalwart.fs.retry``.

A fake call fails with generated errors and then succeeds; policy, jitter seed and the fake
clock's starting point are generated too. Nothing sleeps for real.
"""

from __future__ import annotations

import errno
import math
import random
from dataclasses import dataclass, field

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import stalwart.fs as fs
from stalwart.errors import LockTimeoutError
from stalwart.fs import retry
from stalwart.fs.faults import make_error

PATHS = ("/nonexistent/stalwart-prop/a.pyd", "/nonexistent/stalwart-prop/b.pyd")
SUCCESS = object()

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# (errno, winerror) pairs by how the layer should treat them for Op.REPLACE; winerror 5 on paths
# that do not exist is a real error (nothing to wait for).
TRANSIENT_ERRORS = [
    (errno.EBUSY, None),
    (errno.ETXTBSY, None),
    (None, 32),
    (None, 33),
    (None, 1224),
]
BRIEF_ERRORS = [(errno.EMFILE, None), (errno.ENFILE, None)]
PERMANENT_ERRORS = [
    (errno.EACCES, None),
    (errno.EPERM, None),
    (errno.ENOENT, None),
    (errno.ENOSPC, None),
    (errno.EXDEV, None),
    (None, 5),
    (None, 145),
    (None, 2),
]
OP = fs.Op.REPLACE


def new_error(spec: tuple[int | None, int | None]) -> OSError:
    code, winerror = spec
    return make_error(PATHS[0], errno=code, winerror=winerror)


def kind_of(spec: tuple[int | None, int | None]) -> fs.Transience:
    if spec in TRANSIENT_ERRORS:
        return fs.Transience.TRANSIENT
    if spec in BRIEF_ERRORS:
        return fs.Transience.BRIEF
    return fs.Transience.PERMANENT


@dataclass
class Clock:
    now: float
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        assert len(self.sleeps) < 100_000, "busy loop"
        self.sleeps.append(seconds)
        if seconds > 0:  # a real sleep always lets the clock move on
            self.now = max(self.now + seconds, math.nextafter(self.now, math.inf))


@st.composite
def policies(draw: st.DrawFn) -> fs.RetryPolicy:
    first_delay = draw(st.floats(1e-4, 0.5))
    max_delay = first_delay + draw(st.floats(0, 1.0))
    return fs.RetryPolicy(
        timeout=draw(st.one_of(st.just(0.0), st.floats(0, 20))),
        first_delay=first_delay,
        multiplier=draw(st.floats(1.0, 4.0)),
        max_delay=max_delay,
        jitter=draw(st.floats(0.0, 0.9)),
        brief_timeout=draw(st.one_of(st.just(0.0), st.floats(0, 5))),
    )


lock_errors = st.sampled_from(TRANSIENT_ERRORS + BRIEF_ERRORS)
permanent_errors = st.sampled_from(PERMANENT_ERRORS)
any_errors = st.sampled_from(TRANSIENT_ERRORS + BRIEF_ERRORS + PERMANENT_ERRORS)
clock_starts = st.one_of(st.just(0.0), st.floats(0, 1e6))


@dataclass
class Outcome:
    result: object
    error: BaseException | None
    calls: int
    errors: list[OSError]
    clock: Clock
    stats: fs.Stats
    call_times: list[float]  # when each call ran, on the layer's clock, from the first


def drive(
    policy: fs.RetryPolicy,
    specs: list[tuple[int | None, int | None]],
    start: float,
    seed: int,
) -> Outcome:
    """Call ``retry`` as an operation would: the first error has already happened."""
    clock = Clock(start)
    errors = [new_error(spec) for spec in specs]
    calls = 1  # the operation's own plain call, which raised errors[0]
    call_times = [0.0]

    def call() -> object:
        nonlocal calls
        calls += 1
        call_times.append(clock.now - start)
        if calls <= len(errors):
            raise errors[calls - 1]
        return SUCCESS

    with fs.settings(
        policy=policy, clock=clock.clock, sleep=clock.sleep, seed=seed, fresh_stats=True
    ) as rt:
        try:
            result = retry(OP, PATHS, call, errors[0])
        except Exception as exc:  # the property inspects what came out
            return Outcome(None, exc, calls, errors, clock, rt.stats, call_times)
    return Outcome(result, None, calls, errors, clock, rt.stats, call_times)


def check_invariants(out: Outcome, policy: fs.RetryPolicy) -> None:
    """What must hold whatever the errors were."""
    assert len(out.clock.sleeps) == out.calls - 1  # one sleep before each retry, none after
    assert all(0 < s <= policy.max_delay for s in out.clock.sleeps), out.clock.sleeps
    assert sum_time(out) <= policy.timeout + policy.max_delay + 1e-9
    if out.error is None:
        assert out.result is SUCCESS
        assert out.calls == len(out.errors) + 1
    else:
        assert out.calls <= len(out.errors)


def sum_time(out: Outcome) -> float:
    return math.fsum(out.clock.sleeps)


@example(  # the last failure lands on the budget to the last bit (found in CI)
    policy=fs.RetryPolicy(
        timeout=0.888018611217949,
        first_delay=0.25,
        multiplier=2.0,
        max_delay=1.25,
        jitter=0.0,
        brief_timeout=0.0,
    ),
    spec=(16, None),
    failures=4,
    start=1.0,
    seed=0,
)
@PROPERTY_SETTINGS
@given(
    policy=policies(),
    spec=lock_errors,
    failures=st.one_of(st.integers(1, 60), st.just(3_000)),
    start=clock_starts,
    seed=st.integers(0, 2**32),
)
def test_lock_errors_succeed_iff_they_end_within_budget(
    policy: fs.RetryPolicy,
    spec: tuple[int | None, int | None],
    failures: int,
    start: float,
    seed: int,
) -> None:
    out = drive(policy, [spec] * failures, start, seed)
    check_invariants(out, policy)
    budget = policy.budget(kind_of(spec) is fs.Transience.BRIEF)
    # Fake time measured by the layer's own clock, from the first failure.
    elapsed_now = out.clock.now - start
    episodes = out.stats.episodes()
    if out.error is None:
        # The failures ended: the last one happened before the budget ran out. Measured
        # the way the layer measures it (clock now minus clock at start), not by summing
        # the sleeps: the two roundings can differ in the last bit at the boundary.
        last_failure_at = out.call_times[-2]
        assert last_failure_at < budget
        assert out.calls == failures + 1
        assert len(episodes) == 1
        assert episodes[0].resolved
        assert episodes[0].attempts == out.calls
    else:
        assert type(out.error) is LockTimeoutError
        err = out.error
        # The layer gave up only once the budget was spent, and not much later.
        assert err.elapsed >= budget - 1e-9
        assert err.elapsed <= budget + policy.max_delay
        assert elapsed_now <= budget + policy.max_delay + 1e-6
        assert err.attempts == out.calls
        assert err.last_error is out.errors[out.calls - 1]
        assert err.errno == out.errors[0].errno
        assert err.winerror == getattr(out.errors[0], "winerror", None)
        assert err.paths == PATHS
        assert len(episodes) == 1
        assert not episodes[0].resolved
        assert episodes[0].attempts == err.attempts
    if budget == 0:
        assert out.calls == 1
        assert out.clock.sleeps == []
        assert isinstance(out.error, LockTimeoutError)
    if failures == 1 and budget > 0:
        assert out.error is None
        assert out.calls == 2


@PROPERTY_SETTINGS
@given(
    policy=policies(),
    spec=permanent_errors,
    start=clock_starts,
    seed=st.integers(0, 2**32),
)
def test_permanent_errors_are_reraised_at_once(
    policy: fs.RetryPolicy,
    spec: tuple[int | None, int | None],
    start: float,
    seed: int,
) -> None:
    out = drive(policy, [spec] * 3, start, seed)
    assert out.error is out.errors[0]  # the very same object
    assert type(out.error) is type(out.errors[0])
    assert not isinstance(out.error, LockTimeoutError)
    assert out.calls == 1
    assert out.clock.sleeps == []
    assert out.clock.now == start
    assert out.stats.episodes() == []


@PROPERTY_SETTINGS
@given(
    policy=policies(),
    specs=st.lists(any_errors, min_size=1, max_size=40),
    seed=st.integers(0, 2**32),
)
def test_mixed_errors_match_a_model_of_the_loop(
    policy: fs.RetryPolicy,
    specs: list[tuple[int | None, int | None]],
    seed: int,
) -> None:
    """From clock 0 the loop's arithmetic is reproducible, so compare with a plain model."""
    out = drive(policy, specs, 0.0, seed)
    check_invariants(out, policy)

    rng = random.Random(seed)
    elapsed = 0.0
    expected_sleeps: list[float] = []
    expected: object = SUCCESS
    expected_calls = len(specs) + 1
    for attempt, spec in enumerate(specs, 1):
        kind = kind_of(spec)
        if kind is fs.Transience.PERMANENT:
            expected, expected_calls = ("permanent", attempt - 1), attempt
            break
        remaining = policy.budget(kind is fs.Transience.BRIEF) - elapsed
        if remaining <= 0:
            expected, expected_calls = ("timeout", attempt - 1), attempt
            break
        delay = min(policy.delay(attempt, rng), remaining)
        expected_sleeps.append(delay)
        elapsed = max(elapsed + delay, math.nextafter(elapsed, math.inf))

    assert out.calls == expected_calls
    assert out.clock.sleeps == expected_sleeps
    if expected is SUCCESS:
        assert out.error is None
        assert out.result is SUCCESS
    elif expected[0] == "permanent":  # type: ignore[index]
        assert out.error is out.errors[expected[1]]  # type: ignore[index]
    else:
        assert isinstance(out.error, LockTimeoutError)
        assert out.error.last_error is out.errors[expected[1]]  # type: ignore[index]
        assert out.error.attempts == expected_calls


@PROPERTY_SETTINGS
@given(
    policy=policies(),
    attempts=st.lists(st.integers(1, 10_000), min_size=1, max_size=50),
    seed=st.integers(0, 2**32),
)
def test_delay_is_positive_and_capped(
    policy: fs.RetryPolicy, attempts: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    for attempt in attempts:
        with_jitter = policy.delay(attempt, rng)
        without = policy.delay(attempt)
        assert 0 < with_jitter <= policy.max_delay
        assert 0 < without <= policy.max_delay
        assert with_jitter >= min(without * (1 - policy.jitter), policy.max_delay) * (1 - 1e-9)
        assert with_jitter <= without * (1 + policy.jitter) * (1 + 1e-9) or (
            with_jitter == policy.max_delay
        )


@PROPERTY_SETTINGS
@given(policy=policies())
def test_delays_without_jitter_grow_until_the_cap(policy: fs.RetryPolicy) -> None:
    no_jitter = [policy.delay(n) for n in range(1, 80)]
    assert no_jitter == sorted(no_jitter)
    assert no_jitter[0] == policy.first_delay
    if policy.multiplier >= 1.5:
        assert no_jitter[-1] == policy.max_delay
