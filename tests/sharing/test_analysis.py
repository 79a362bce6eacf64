"""Reports: memory per tensor and per model, sharing opportunities, recommendations, statistics."""

from __future__ import annotations

import numpy as np

import accelerate_lab as al


def _multimodel() -> al.TensorSharingManager:
    mgr = al.TensorSharingManager()
    mgr.register_shared_tensor(
        "bert.text", [1, 768], producer_model="bert-base-uncased", tensor_type="text_embedding"
    )
    mgr.register_shared_tensor(
        "t5.text", data=np.ones((1, 768), np.float32), producer_model="t5-small", tensor_type="text_embedding"
    )
    mgr.register_shared_tensor(
        "vit.patch", [197, 768], producer_model="vit", consumer_models=["clip-vit-b32"]
    )
    mgr.register_shared_tensor("whisper.mel", [80, 3000], producer_model="whisper-tiny.en")
    mgr.register_shared_tensor("whisper.mel-copy", [80, 3000], producer_model="whisper-tiny.en")
    return mgr


def test_tensor_memory_usage_lists_bytes_holders_and_views() -> None:
    mgr = _multimodel()
    mgr.create_tensor_view("vit.patch", "cls", 0, 768, model_name="clip-vit-b32")
    usage = mgr.get_tensor_memory_usage()["vit.patch"]
    assert usage.bytes == 197 * 768 * 4 and usage.shape == (197, 768) and usage.dtype == "float32"
    assert usage.references == {"vit": 1, "clip-vit-b32": 2} and usage.views == ("cls",)
    assert usage.producer == "vit" and not usage.pinned and usage.shares_storage_with == ()


def test_model_memory_usage_splits_exclusive_and_shared_bytes() -> None:
    usage = _multimodel().get_model_memory_usage()
    patch = 197 * 768 * 4
    assert (
        usage["vit"].bytes == patch
        and usage["vit"].shared_bytes == patch
        and usage["vit"].exclusive_bytes == 0
    )
    assert usage["whisper-tiny.en"].exclusive_bytes == 2 * 80 * 3000 * 4
    assert usage["whisper-tiny.en"].tensors == ("whisper.mel", "whisper.mel-copy")


def test_stats_report_bytes_saved_by_sharing() -> None:
    stats = _multimodel().get_stats()
    patch = 197 * 768 * 4
    assert stats.tensors == 5 and stats.current_bytes == 2 * 768 * 4 + patch + 2 * 80 * 3000 * 4
    assert stats.saved_bytes == patch and stats.unshared_bytes == stats.current_bytes + patch
    assert stats.models == ("bert-base-uncased", "clip-vit-b32", "t5-small", "vit", "whisper-tiny.en")


def test_analysis_matches_active_models_to_the_type_table_and_finds_duplicates() -> None:
    analysis = _multimodel().analyze_sharing_opportunities()
    assert analysis.by_tensor_type == {
        "text_embedding": ("bert-base-uncased", "t5-small"),
        "vision_embedding": ("clip-vit-b32", "vit"),
    }
    (group,) = analysis.duplicates
    assert group.tensors == ("whisper.mel", "whisper.mel-copy") and group.saves_bytes == 80 * 3000 * 4


def test_registered_tensor_types_extend_the_analysis() -> None:
    mgr = _multimodel()
    al.register_tensor_type("audio_embedding", ["bert"])
    assert mgr.analyze_sharing_opportunities().by_tensor_type["audio_embedding"] == (
        "bert-base-uncased",
        "whisper-tiny.en",
    )


def test_recommendations_are_concrete_and_sorted_by_bytes_saved() -> None:
    mgr = _multimodel()
    mgr.register_shared_tensor("idle", [1000])
    mgr.register_shared_tensor("kept", [10]).pin()
    recommendations = mgr.get_optimization_recommendations()
    by_action = {r.action: r for r in recommendations}
    assert [r.bytes_saved for r in recommendations] == sorted(
        (r.bytes_saved for r in recommendations), reverse=True
    )
    assert by_action["deduplicate"].bytes_saved == 80 * 3000 * 4
    assert by_action["free"].tensors == ("idle",) and by_action["free"].bytes_saved == 4000
    assert by_action["unpin"].tensors == ("kept",) and by_action["unpin"].bytes_saved == 40
    share = by_action["share"]
    assert share.tensors == ("bert.text", "t5.text") and share.models == ("t5-small",)
    assert share.bytes_saved == 768 * 4 and "share_tensor_between_models('bert.text'" in share.how
    before = mgr.get_stats().current_bytes
    result = mgr.optimize_memory_usage()
    assert before - result.final_bytes == by_action["deduplicate"].bytes_saved + by_action["free"].bytes_saved


def test_memory_stats_use_pytorch_names_per_device_and_overall() -> None:
    mgr = al.TensorSharingManager()
    mgr.register_shared_tensor("a", [4])
    mgr.register_shared_tensor("b", [2], dtype="float64")
    mgr.free_shared_tensor("a")
    stats = mgr.memory_stats("cpu")
    assert stats["allocated_bytes.all.current"] == 16 and stats["allocated_bytes.all.peak"] == 32
    assert stats["allocated_bytes.all.allocated"] == 32 and stats["allocated_bytes.all.freed"] == 16
    assert (
        stats["allocation.all.current"],
        stats["allocation.all.allocated"],
        stats["allocation.all.freed"],
    ) == (1, 2, 1)
    assert mgr.memory_stats() == stats
    assert mgr.memory_stats("wgpu")["allocated_bytes.all.current"] == 0


def test_saved_bytes_include_duplicates_merged_within_one_model() -> None:
    mgr = al.TensorSharingManager()
    embed = np.ones((64, 8), np.float32)
    mgr.register_shared_tensor("embed_tokens", data=embed, producer_model="llama")
    mgr.register_shared_tensor("lm_head", data=embed.copy(), producer_model="llama")
    assert mgr.get_stats().saved_bytes == 0
    mgr.optimize_memory_usage()
    stats = mgr.get_stats()
    assert stats.current_bytes == embed.nbytes and stats.saved_bytes == embed.nbytes
