"""The sharing layer's invariants under random sequences of operations (hypothesis state machine).

The machine keeps its own record of what each model holds, what is pinned, which views are open
and what every tensor contains, and checks after every step: counts are never negative, no device
is over budget, freed tensors and closed views are unreadable, open views read their parent's
live data, and the bytes reported equal the sum of the live storages.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

import accelerate_lab as al
from accelerate_lab.hal import register_device
from accelerate_lab.sharing._ledger import MIB
from tests.sharing.conftest import CopyingDevice

BUDGET_MB = 1 / 32  # 32 KiB per device
DEVICES = ("cpu", "gpu-like")
MODELS = ("bert", "clip", "vit", "whisper")


@dataclass
class Expected:
    tensor: al.SharedTensor
    content: np.ndarray
    refs: dict[str, int] = field(default_factory=dict)
    pinned: bool = False
    views: dict[str, tuple[al.SharedTensorView, slice]] = field(default_factory=dict)

    def freeable(self) -> bool:
        return not self.refs and not self.pinned and not self.views


class SharingMachine(RuleBasedStateMachine):
    names = Bundle("names")
    views = Bundle("views")

    def __init__(self) -> None:
        super().__init__()
        register_device("gpu-like", lambda: CopyingDevice("gpu-like"), replace=True)
        self.mgr = al.TensorSharingManager(max_memory_mb=BUDGET_MB)
        self.live: dict[str, Expected] = {}
        self.freed: list[al.SharedTensor] = []
        self.closed: list[al.SharedTensorView] = []
        self.counter = itertools.count()

    # ---- bookkeeping ------------------------------------------------------------------------
    def _settle(self, before: dict[str, Expected]) -> None:
        """Move tensors the last step freed out of ``live``; each must have been freeable."""
        for name, expected in list(self.live.items()):
            if expected.tensor.is_freed:
                assert before[name].freeable(), f"{name} was freed while held"
                self.freed.append(self.live.pop(name).tensor)

    def _admit(
        self, name: str, make: object, nbytes: int, device: str, content: np.ndarray, producer: str | None
    ) -> str | None:
        before = dict(self.live)
        in_use = self.mgr.memory_stats(device)["allocated_bytes.all.current"]
        try:
            tensor = make()  # type: ignore[operator]
        except al.MemoryBudgetExceeded:
            freeable = _freeable_bytes([e for e in before.values() if e.tensor.storage_type == device])
            assert in_use + nbytes - freeable > BUDGET_MB * MIB, (
                "refused although eviction would have made room"
            )
            assert all(not e.tensor.is_freed for e in before.values()), "a refusal evicted something"
            return None
        self._settle(before)
        self.live[name] = Expected(tensor, content, {producer: 1} if producer else {})
        return name

    # ---- rules ------------------------------------------------------------------------------
    @rule(
        target=names,
        size=st.sampled_from([1, 16, 256, 2048, 5000]),
        dtype=st.sampled_from(["float32", "float16", "int64", "uint8"]),
        device=st.sampled_from(DEVICES),
        fill=st.sampled_from([None, 0, 1, 7]),
        producer=st.sampled_from([None, *MODELS]),
    )
    def register(self, size: int, dtype: str, device: str, fill: int | None, producer: str | None) -> object:
        name = f"t{next(self.counter)}"
        content = np.full(size, 0 if fill is None else fill, dtype=dtype)
        data = None if fill is None else content.copy()

        def make() -> al.SharedTensor:
            return self.mgr.register_shared_tensor(
                name, [size], storage_type=device, producer_model=producer, dtype=dtype, data=data
            )

        return self._admit(name, make, content.nbytes, device, content, producer) or multiple()

    @rule(target=names, name=names, device=st.sampled_from(DEVICES))
    def copy(self, name: str, device: str) -> object:
        if name not in self.live:
            return multiple()
        source = self.live[name]
        copy_name = f"t{next(self.counter)}"
        producer = source.tensor.producer_model

        def make() -> al.SharedTensor:
            return source.tensor.copy_to(device, name=copy_name)

        return (
            self._admit(copy_name, make, source.content.nbytes, device, source.content.copy(), producer)
            or multiple()
        )

    @rule(name=names, model=st.sampled_from(MODELS))
    def acquire(self, name: str, model: str) -> None:
        if name in self.live:
            self.live[name].tensor.acquire(model)
            refs = self.live[name].refs
            refs[model] = refs.get(model, 0) + 1

    @rule(name=names, model=st.sampled_from(MODELS))
    def release(self, name: str, model: str) -> None:
        if name in self.live:
            refs = self.live[name].refs
            assert self.live[name].tensor.release(model) == (model in refs)
            if model in refs:
                refs[model] -= 1
                if not refs[model]:
                    del refs[model]

    @rule(name=names, pin=st.booleans())
    def pin(self, name: str, pin: bool) -> None:
        if name in self.live:
            tensor = self.live[name].tensor
            tensor.pin() if pin else tensor.unpin()
            self.live[name].pinned = pin

    @rule(target=views, name=names, data=st.data())
    def create_view(self, name: str, data: st.DataObject) -> object:
        if name not in self.live:
            return multiple()
        expected = self.live[name]
        n = expected.content.size
        start = data.draw(st.integers(0, n - 1))
        stop = data.draw(st.integers(start, n))
        view_name = f"v{next(self.counter)}"
        view = expected.tensor.create_view(view_name, start, stop - start)
        expected.views[view_name] = (view, slice(start, stop))
        return view

    @rule(view=consumes(views))
    def close_view(self, view: al.SharedTensorView) -> None:
        if view.is_closed:
            return
        owner = self.live[view.parent.name]
        for model, held in view.references.items():  # released on the parent as far as it still holds them
            left = owner.refs.get(model, 0) - held
            if left > 0:
                owner.refs[model] = left
            else:
                owner.refs.pop(model, None)
        view.close()
        del owner.views[view.name]
        self.closed.append(view)

    @rule(view=views, model=st.sampled_from(MODELS))
    def acquire_view(self, view: al.SharedTensorView, model: str) -> None:
        if not view.is_closed:
            view.acquire(model)
            refs = self.live[view.parent.name].refs
            refs[model] = refs.get(model, 0) + 1

    @rule(model=st.sampled_from(MODELS))
    def release_model(self, model: str) -> None:
        held = sum(1 for e in self.live.values() if model in e.refs)
        assert self.mgr.release_model_tensors(model) == held
        for expected in self.live.values():
            expected.refs.pop(model, None)

    @rule(name=names)
    def free(self, name: str) -> None:
        if name in self.live:
            expected = self.live[name]
            try:
                self.mgr.free_shared_tensor(name)
            except ValueError:
                assert not expected.freeable()
            else:
                assert expected.freeable()
                self.freed.append(self.live.pop(name).tensor)

    @rule()
    def optimize(self) -> None:
        before = dict(self.live)
        result = self.mgr.optimize_memory_usage()
        self._settle(before)
        assert set(result.freed_tensors) == {n for n, e in before.items() if e.freeable()}
        assert result.final_bytes == result.initial_bytes - result.freed_bytes - result.merged_bytes

    # ---- invariants -------------------------------------------------------------------------
    @invariant()
    def counts_match_and_are_never_negative(self) -> None:
        for expected in self.live.values():
            refs = expected.tensor.references
            assert refs == expected.refs and all(n > 0 for n in refs.values())
            assert expected.tensor.reference_count == sum(expected.refs.values())

    @invariant()
    def no_device_is_over_budget(self) -> None:
        for device in DEVICES:
            assert self.mgr.memory_stats(device)["allocated_bytes.all.current"] <= BUDGET_MB * MIB

    @invariant()
    def freed_tensors_and_closed_views_are_unreadable(self) -> None:
        for tensor in self.freed[-5:]:
            try:
                tensor.data  # noqa: B018
            except al.TensorFreedError:
                continue
            raise AssertionError(f"freed {tensor.name} is readable")
        for view in self.closed[-5:]:
            try:
                view.get_data()
            except al.TensorFreedError:
                continue
            raise AssertionError(f"closed {view.name} is readable")

    @invariant()
    def live_data_and_open_views_read_the_right_contents(self) -> None:
        for expected in self.live.values():
            np.testing.assert_array_equal(expected.tensor.data.numpy(), expected.content)
            for view, window in expected.views.values():
                assert not view.parent.is_freed
                np.testing.assert_array_equal(view.get_data().numpy(), expected.content[window])

    @invariant()
    def reported_bytes_are_the_live_storages(self) -> None:
        for device in DEVICES:
            storages = {
                id(e.tensor._storage): e.tensor.get_memory_usage()
                for e in self.live.values()
                if e.tensor.storage_type == device
            }
            stats = self.mgr.memory_stats(device)
            assert stats["allocated_bytes.all.current"] == sum(storages.values())
            assert stats["allocation.all.current"] == len(storages)
        assert self.mgr.get_stats().current_bytes == sum(
            {id(e.tensor._storage): e.tensor.get_memory_usage() for e in self.live.values()}.values()
        )

    @invariant()
    def the_pool_indexes_agree_with_its_tensors(self) -> None:
        pool = self.mgr._pool
        tensors = list(pool.tensors.values())
        unreferenced = list(pool.unreferenced.values())
        assert {id(t) for t in unreferenced} == {id(t) for t in tensors if not t.reference_count}
        used = [t._last_used for t in unreferenced]
        assert used == sorted(used), "unreferenced tensors are not least recently used first"
        storages = {id(t._storage): t._storage for t in tensors}
        for layout, same in pool.layouts.items():
            assert [s.serial for s in same] == sorted(s.serial for s in same) and same
            for storage in same:
                assert storage is storages.pop(id(storage)) and storage.layout == layout
                readers = storage.readers  # oldest first, along the chain of next links
                assert {id(t) for t in readers} == {id(t) for t in tensors if t._storage is storage}
                assert len(readers) == len(set(map(id, readers)))
                assert [t._prev_reader for t in readers] == [None, *readers[:-1]]
                assert storage.last_reader is readers[-1]
        assert not storages, "live storages missing from the layout index"


def _freeable_bytes(entries: list[Expected]) -> int:
    """Bytes eviction could release: a storage (shared after a dedupe) only when all its readers go."""
    readers: dict[int, list[Expected]] = {}
    for e in entries:
        readers.setdefault(id(e.tensor._storage), []).append(e)
    return sum(
        group[0].tensor.get_memory_usage() for group in readers.values() if all(e.freeable() for e in group)
    )


def multiple() -> object:
    from hypothesis.stateful import multiple as none_of

    return none_of()


SharingMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
test_sharing_invariants = SharingMachine.TestCase
