"""The classification table, the retry policy's validation and back-off, and ``policy_from_env``."""

from __future__ import annotations

import errno
import math
import random

import pytest

from stalwart.fs import (
    DEFAULT_TIMEOUT,
    ENV_LOCK_TIMEOUT,
    Op,
    RetryPolicy,
    Target,
    Transience,
    classify,
    policy_from_env,
)
from stalwart.fs.faults import make_error

PERMANENT = Transience.PERMANENT
TRANSIENT = Transience.TRANSIENT
BRIEF = Transience.BRIEF

ALL_OPS = list(Op)
ALL_TARGETS = list(Target)


def win(code: int) -> OSError:
    return make_error("C:\\env\\Lib\\site-packages\\demo.pyd", winerror=code)


def posix(code: int) -> OSError:
    return make_error("/env/lib/demo.so", errno=code)


# --- Windows codes -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ALL_TARGETS)
@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("code", [32, 33, 1224])
def test_windows_lock_codes_are_transient_for_every_op(code: int, op: Op, target: Target) -> None:
    assert classify(win(code), op, target) is TRANSIENT


@pytest.mark.parametrize("target", ALL_TARGETS)
@pytest.mark.parametrize("op", ALL_OPS)
def test_windows_dir_not_empty_is_transient_only_for_rmdir(op: Op, target: Target) -> None:
    expected = TRANSIENT if op is Op.RMDIR else PERMANENT
    assert classify(win(145), op, target) is expected


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (Target.OWN_FILE, TRANSIENT),  # a file we just wrote: a scanner, never an ACL
        (Target.FILE, BRIEF),
        (Target.DIRECTORY, PERMANENT),
        (Target.EMPTIED_DIRECTORY, PERMANENT),
        (Target.READONLY_FILE, PERMANENT),
        (Target.MISSING, PERMANENT),
        (Target.UNKNOWN, PERMANENT),
    ],
)
def test_windows_access_denied_is_brief_only_on_a_plain_file(
    op: Op, target: Target, expected: Transience
) -> None:
    assert classify(win(5), op, target) is expected


def test_windows_access_denied_default_target_is_permanent() -> None:
    assert classify(win(5), Op.UNLINK) is PERMANENT


@pytest.mark.parametrize("code", [2, 3, 17, 87, 112, 183, 1142])
def test_other_windows_codes_are_permanent(code: int) -> None:
    for op in ALL_OPS:
        for target in ALL_TARGETS:
            assert classify(win(code), op, target) is PERMANENT, (code, op, target)


def test_winerror_wins_over_errno() -> None:
    # make_error gives errno EACCES (permanent on POSIX) with winerror 32 (a lock).
    exc = win(32)
    assert exc.errno == errno.EACCES
    assert classify(exc, Op.REPLACE) is TRANSIENT
    # And the other way round: a POSIX-transient errno with a permanent winerror.
    busy = posix(errno.EBUSY)
    busy.winerror = 2  # type: ignore[attr-defined]
    assert classify(busy, Op.REPLACE) is PERMANENT


def test_make_error_carries_winerror_and_path() -> None:
    exc = make_error("some/path", winerror=32)
    assert isinstance(exc, OSError)
    assert exc.winerror == 32  # type: ignore[attr-defined]
    assert exc.filename == "some/path"
    assert "another process" in str(exc)


# --- POSIX codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ALL_TARGETS)
@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EBUSY, TRANSIENT),
        (errno.ETXTBSY, TRANSIENT),
        (errno.EMFILE, BRIEF),
        (errno.ENFILE, BRIEF),
        (errno.EACCES, PERMANENT),
        (errno.EPERM, PERMANENT),
        (errno.ENOENT, PERMANENT),
        (errno.ENOSPC, PERMANENT),
        (errno.EEXIST, PERMANENT),
        (errno.EXDEV, PERMANENT),
        (errno.EROFS, PERMANENT),
        (errno.EISDIR, PERMANENT),
    ],
)
def test_posix_table(code: int, expected: Transience, op: Op, target: Target) -> None:
    if code == errno.EEXIST and op is Op.RMDIR and target is Target.EMPTIED_DIRECTORY:
        expected = TRANSIENT  # see the next test
    assert classify(posix(code), op, target) is expected


@pytest.mark.parametrize("code", [errno.ENOTEMPTY, errno.EEXIST])
def test_not_empty_is_a_lock_only_for_a_directory_just_emptied(code: int) -> None:
    """rmtree removed every entry, yet rmdir says "not empty": an NFS silly-rename (or, with
    WinError 145, a delete-pending child) that goes away once the other handle closes."""
    assert classify(posix(code), Op.RMDIR, Target.EMPTIED_DIRECTORY) is TRANSIENT
    assert classify(posix(code), Op.RMDIR, Target.DIRECTORY) is PERMANENT
    assert classify(posix(code), Op.RMDIR) is PERMANENT
    assert classify(posix(code), Op.UNLINK, Target.EMPTIED_DIRECTORY) is PERMANENT


def test_posix_subclasses_classified_by_errno() -> None:
    assert classify(PermissionError(errno.EACCES, "denied"), Op.UNLINK) is PERMANENT
    assert classify(FileNotFoundError(errno.ENOENT, "gone"), Op.UNLINK) is PERMANENT
    assert classify(OSError(errno.EBUSY, "busy"), Op.RMDIR) is TRANSIENT


def test_error_without_errno_is_permanent() -> None:
    assert classify(OSError("no errno at all"), Op.REPLACE) is PERMANENT


# --- RetryPolicy validation ----------------------------------------------------------------------


def test_default_policy_values() -> None:
    policy = RetryPolicy()
    assert policy.timeout == DEFAULT_TIMEOUT == 10.0
    assert 0 < policy.first_delay <= policy.max_delay
    assert policy.budget(brief=True) == 1.0 <= policy.timeout


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": -0.001},
        {"brief_timeout": -1.0},
        {"first_delay": 0.0},
        {"first_delay": -0.1},
        {"first_delay": 0.5, "max_delay": 0.2},
        {"max_delay": 0.0},
        {"multiplier": 0.99},
        {"jitter": -0.01},
        {"jitter": 1.0},
        {"jitter": 1.5},
    ],
)
def test_policy_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0.0},
        {"brief_timeout": 0.0},
        {"first_delay": 0.2, "max_delay": 0.2},
        {"multiplier": 1.0},
        {"jitter": 0.0},
        {"jitter": 0.999},
    ],
)
def test_policy_accepts_boundary_values(kwargs: dict[str, float]) -> None:
    policy = RetryPolicy(**kwargs)
    for name, value in kwargs.items():
        assert getattr(policy, name) == value


@pytest.mark.parametrize(
    "field", ["timeout", "brief_timeout", "first_delay", "max_delay", "multiplier", "jitter"]
)
def test_policy_rejects_nan(field: str) -> None:
    # timeout=nan would never run out (`remaining <= 0` is never true): retried for ever.
    with pytest.raises(ValueError):
        RetryPolicy(**{field: math.nan})


@pytest.mark.parametrize("field", ["max_delay", "multiplier"])
def test_policy_rejects_infinite_back_off(field: str) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**{field: math.inf})


@pytest.mark.parametrize("multiplier", [1e6, 1e100, 1.7e308])
def test_delay_never_overflows_for_an_accepted_policy(multiplier: float) -> None:
    # multiplier ** 64 overflows a float for multipliers above ~6.5e4.
    policy = RetryPolicy(multiplier=multiplier)
    for attempt in (1, 2, 53, 60, 65, 10_000):
        assert 0 < policy.delay(attempt, random.Random(attempt)) <= policy.max_delay
    assert policy.delay(60) == policy.max_delay


def test_policy_is_frozen_and_with_timeout_copies() -> None:
    policy = RetryPolicy(max_delay=0.5)
    with pytest.raises(AttributeError):
        policy.timeout = 3.0  # type: ignore[misc]
    other = policy.with_timeout(3.0)
    assert other.timeout == 3.0
    assert other.max_delay == 0.5
    assert policy.timeout == DEFAULT_TIMEOUT
    with pytest.raises(ValueError):
        policy.with_timeout(-1.0)


def test_brief_budget_follows_the_timeout() -> None:
    """A tenth of the budget, at least 1 s, never more than the budget: raising
    --lock-timeout for a slow scanner raises the brief budget too."""
    assert RetryPolicy(timeout=10.0).budget(brief=True) == 1.0
    assert RetryPolicy(timeout=60.0).budget(brief=True) == 6.0
    assert RetryPolicy(timeout=3.0).budget(brief=True) == 1.0
    assert RetryPolicy(timeout=0.5).budget(brief=True) == 0.5
    assert RetryPolicy(timeout=0.0).budget(brief=True) == 0.0


def test_budget() -> None:
    policy = RetryPolicy(timeout=10.0, brief_timeout=1.0)
    assert policy.budget(False) == 10.0
    assert policy.budget(True) == 1.0
    # The brief budget never exceeds the full one.
    short = RetryPolicy(timeout=0.25, brief_timeout=1.0)
    assert short.budget(True) == 0.25
    assert RetryPolicy(timeout=0.0).budget(True) == 0.0
    assert RetryPolicy(timeout=0.0).budget(False) == 0.0


# --- back-off ------------------------------------------------------------------------------------


def test_delay_without_jitter_is_exponential_and_capped() -> None:
    policy = RetryPolicy(first_delay=0.001, multiplier=2.0, max_delay=0.2, jitter=0.0)
    delays = [policy.delay(n) for n in range(1, 12)]
    assert delays[:8] == pytest.approx([0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128])
    assert delays[8:] == [0.2, 0.2, 0.2]
    # The rng is ignored when there is no jitter.
    assert policy.delay(3, random.Random(1)) == pytest.approx(0.004)


def test_delay_without_rng_has_no_jitter() -> None:
    policy = RetryPolicy(jitter=0.25)
    assert policy.delay(1) == policy.first_delay
    assert policy.delay(2) == pytest.approx(policy.first_delay * policy.multiplier)


@pytest.mark.parametrize("seed", range(5))
def test_delay_bounds_with_jitter(seed: int) -> None:
    policy = RetryPolicy(first_delay=0.001, multiplier=2.0, max_delay=0.2, jitter=0.25)
    rng = random.Random(seed)
    seen = set()
    for attempt in range(1, 200):
        base = policy.first_delay * policy.multiplier ** min(attempt - 1, 64)
        d = policy.delay(attempt, rng)
        assert 0 < d <= policy.max_delay
        assert d >= min(base * (1 - policy.jitter), policy.max_delay) * (1 - 1e-12)
        assert d <= base * (1 + policy.jitter) * (1 + 1e-12)
        seen.add(d)
    # Jitter really varies the delay before the cap is reached.
    early = {policy.delay(1, rng) for _ in range(20)}
    assert len(early) > 1
    assert len(seen) > 1


def test_delay_huge_attempt_stays_at_cap() -> None:
    policy = RetryPolicy()
    assert policy.delay(10_000, random.Random(0)) == policy.max_delay
    assert policy.delay(10_000) == policy.max_delay


def test_multiplier_one_gives_constant_delay() -> None:
    policy = RetryPolicy(first_delay=0.05, multiplier=1.0, max_delay=0.2, jitter=0.0)
    assert {policy.delay(n) for n in range(1, 50)} == {0.05}


# --- policy_from_env -----------------------------------------------------------------------------


def test_env_name() -> None:
    assert ENV_LOCK_TIMEOUT == "STALWART_LOCK_TIMEOUT"


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_env_unset_or_blank_gives_default(raw: str | None) -> None:
    environ = {} if raw is None else {ENV_LOCK_TIMEOUT: raw}
    assert policy_from_env(environ) == RetryPolicy()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0.0), ("0.0", 0.0), ("2.5", 2.5), (" 30 ", 30.0), ("1e1", 10.0), ("7", 7.0)],
)
def test_env_parsed(raw: str, expected: float) -> None:
    policy = policy_from_env({ENV_LOCK_TIMEOUT: raw})
    assert policy.timeout == expected
    # Only the timeout changes.
    assert policy.with_timeout(DEFAULT_TIMEOUT) == RetryPolicy()


@pytest.mark.parametrize("raw", ["abc", "10s", "1,5", "-1", "-0.001", "nan", "NaN", "-inf"])
def test_env_bad_values_raise(raw: str) -> None:
    with pytest.raises(ValueError, match=ENV_LOCK_TIMEOUT):
        policy_from_env({ENV_LOCK_TIMEOUT: raw})


def test_env_read_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_LOCK_TIMEOUT, "3.5")
    assert policy_from_env().timeout == 3.5
    monkeypatch.setenv(ENV_LOCK_TIMEOUT, "zero")
    with pytest.raises(ValueError):
        policy_from_env()
    monkeypatch.delenv(ENV_LOCK_TIMEOUT)
    assert policy_from_env().timeout == DEFAULT_TIMEOUT
