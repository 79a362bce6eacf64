"""A Hugging Face encoder exported to ONNX with torch's exporter: the baseline that onnxruntime (bench/)
and transformers.js (the browser tier) run, from the same weights as ours."""

from __future__ import annotations

from pathlib import Path


def export_last_hidden_state(model: object, path: Path) -> Path:
    """Write ``model`` (a transformers encoder) to ``path`` as ONNX: inputs ``input_ids`` and
    ``attention_mask``, output ``last_hidden_state`` (the name transformers.js reads), batch and length
    dynamic."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # type: ignore[operator,no-any-return]

    path.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.ones((2, 16), dtype=torch.int64)
    torch.onnx.export(
        LastHiddenState().eval(),
        (ids, torch.ones_like(ids)),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={
            name: {0: "batch", 1: "length"} for name in ("input_ids", "attention_mask", "last_hidden_state")
        },
        dynamo=False,
    )
    return path
