"""Model demos: BERT, ViT, CLIP and Whisper in a widget, each with a device picker, a progress bar
while its weights load, and measured timings.

>>> from accelerate_lab.widgets.demos import BertDemo, ClipDemo, VitDemo, WhisperDemo
"""

from accelerate_lab.widgets.demos.bert_demo import BertDemo
from accelerate_lab.widgets.demos.clip_demo import ClipDemo
from accelerate_lab.widgets.demos.vit_demo import VitDemo
from accelerate_lab.widgets.demos.whisper_demo import WhisperDemo

__all__ = ["BertDemo", "ClipDemo", "VitDemo", "WhisperDemo"]
