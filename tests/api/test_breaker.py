"""Circuit breaker transitions, checked directly and against a model with a stateful test."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from accelerate_lab.api import CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_then_half_opens_then_closes() -> None:
    clock = Clock()
    seen: list[tuple[CircuitState, CircuitState]] = []
    b = CircuitBreaker(failure_threshold=3, reset_timeout=10.0, clock=clock)
    b.add_listener(lambda old, new: seen.append((old, new)))
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state is CircuitState.CLOSED
    b.record_failure()
    # mypy keeps b.state narrowed across record_failure() (python/mypy#17537)
    assert b.state is CircuitState.OPEN and not b.allow()  # type: ignore[comparison-overlap]
    assert b.retry_in() == 10.0
    clock.now = 10.0
    assert b.state is CircuitState.HALF_OPEN
    assert b.allow()
    assert not b.allow()  # one trial call at a time
    b.record_success()
    assert b.state is CircuitState.CLOSED
    assert seen == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    assert b.stats().times_opened == 1


def test_failed_trial_reopens() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, reset_timeout=5.0, clock=clock)
    b.record_failure()
    clock.now = 5.0
    assert b.allow()
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert b.retry_in() == 5.0


def test_success_resets_the_consecutive_count() -> None:
    b = CircuitBreaker(failure_threshold=2)
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is CircuitState.CLOSED


def test_cancelled_trial_frees_the_half_open_permit() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, reset_timeout=1.0, clock=clock)
    b.record_failure()
    clock.now = 1.0
    assert b.allow()
    b.record_cancelled()
    assert b.allow()


class BreakerModel(RuleBasedStateMachine):
    """The breaker against a few lines of reference logic, over random calls and clock moves."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.threshold, self.reset = 3, 10.0
        self.b = CircuitBreaker(self.threshold, self.reset, clock=self.clock)
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.trial_out = False
        self.in_call = False

    def _model_state(self) -> CircuitState:
        if self.state is CircuitState.OPEN and self.clock.now - self.opened_at >= self.reset:
            self.state = CircuitState.HALF_OPEN
            self.trial_out = False
        return self.state

    @rule(dt=st.floats(0, 15))
    def tick(self, dt: float) -> None:
        self.clock.now += dt

    @precondition(lambda self: not self.in_call)
    @rule()
    def call(self) -> None:
        state = self._model_state()
        expected = state is CircuitState.CLOSED or (state is CircuitState.HALF_OPEN and not self.trial_out)
        assert self.b.allow() == expected
        if expected:
            self.in_call = True
            if state is CircuitState.HALF_OPEN:
                self.trial_out = True

    @precondition(lambda self: self.in_call)
    @rule(ok=st.booleans())
    def finish(self, ok: bool) -> None:
        self.in_call = False
        state = self._model_state()
        if ok:
            self.b.record_success()
            self.failures = 0
            if state is CircuitState.HALF_OPEN:
                self.state = CircuitState.CLOSED
        else:
            self.b.record_failure()
            self.failures += 1
            trips = state is CircuitState.HALF_OPEN or self.failures >= self.threshold
            if trips and state is not CircuitState.OPEN:
                self.state, self.opened_at = CircuitState.OPEN, self.clock.now
        self.trial_out = False

    @invariant()
    def same_state(self) -> None:
        assert self.b.state is self._model_state()


TestBreakerModel = BreakerModel.TestCase
TestBreakerModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
