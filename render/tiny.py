"""A tiny random-weight Wan pipeline, built entirely offline.

It exercises the real diffusers code paths (tokenizer, text encoder, transformer,
scheduler, VAE decode, step callbacks, save/load) in well under a second per clip on
a CPU, so the worker, the encoder and the provenance chain can be tested end to end
without model weights. Its frames are structured noise, not pictures.

diffusers' own tests (tests/pipelines/wan/test_wan.py, ``get_dummy_components``) fetch
a tokenizer and a T5 config from the Hub; here both are made in memory instead:

* tokenizer: a Unigram model over single characters with a Metaspace pre-tokenizer and
  a ``</s>`` post-processor (the shape of the real umt5 SentencePiece tokenizer),
  wrapped in ``PreTrainedTokenizerFast``;
* text encoder: a random ``UMT5EncoderModel`` (d_model 32, 2 layers). The brief says
  T5; UMT5 is the class Wan's pipelines declare (the real checkpoint is umt5-xxl), so a
  saved tiny pipeline reloads without a type warning. Both share T5's layout.

VAE, transformer and scheduler sizes follow diffusers' tests. Importing this module
imports torch: only the render worker and tests import it.
"""

from __future__ import annotations

import string
from typing import Any

import torch

__all__ = [
    "build_tiny_tokenizer",
    "build_tiny_wan",
    "build_tiny_wan_i2v",
]

_TEXT_DIM = 32
_SPECIALS = ("<pad>", "</s>", "<unk>")
_PAD_ID, _EOS_ID, _UNK_ID = 0, 1, 2


# diffusers and transformers are untyped; going through Any keeps mypy quiet about it.
def _diffusers() -> Any:
    import diffusers

    return diffusers


def _transformers() -> Any:
    import transformers

    return transformers


def build_tiny_tokenizer() -> Any:
    """A character-level Unigram tokenizer shaped like umt5's (``PreTrainedTokenizerFast``)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces = ["\u2581", *string.ascii_letters, *string.digits, *string.punctuation]
    vocab = [(s, 0.0) for s in _SPECIALS] + [(p, -1.0) for p in pieces]
    tok = Tokenizer(models.Unigram(vocab, unk_id=_UNK_ID, byte_fallback=False))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", _EOS_ID)]
    )
    return _transformers().PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
    )


def _tiny_transformer(*, image_to_video: bool) -> Any:
    return _diffusers().WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        # Image-to-video concatenates 16 noise + 4 mask + 16 image-latent channels.
        in_channels=36 if image_to_video else 16,
        out_channels=16,
        text_dim=_TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        # Per-axis rotary positions: 64 covers 161 frames (41 latent frames).
        rope_max_seq_len=64,
        image_dim=4 if image_to_video else None,
    )


def build_tiny_wan(seed: int = 0) -> Any:
    """A random-weight ``WanPipeline``; the same ``seed`` gives the same weights."""
    d, t = _diffusers(), _transformers()

    tokenizer = build_tiny_tokenizer()
    # fork_rng keeps the caller's global RNG untouched by our seeding.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = d.AutoencoderKLWan(
            base_dim=3,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        )
        torch.manual_seed(seed)
        text_encoder = t.UMT5EncoderModel(
            t.UMT5Config(
                vocab_size=len(tokenizer),
                d_model=_TEXT_DIM,
                d_kv=8,
                d_ff=37,
                num_layers=2,
                num_heads=4,
                relative_attention_num_buckets=8,
                pad_token_id=_PAD_ID,
                eos_token_id=_EOS_ID,
                decoder_start_token_id=_PAD_ID,
            )
        )
        torch.manual_seed(seed)
        transformer = _tiny_transformer(image_to_video=False)
    pipe = d.WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=d.FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer,
    )
    _to_eval(pipe)
    return pipe


def build_tiny_wan_i2v(seed: int = 0, *, share: Any | None = None) -> Any:
    """A random-weight Wan 2.1-style ``WanImageToVideoPipeline``.

    It has its own transformer (36 input channels, image cross-attention) and a tiny
    CLIP vision encoder; tokenizer, text encoder, VAE and scheduler come from ``share``
    when given, as they would from one Wan checkpoint family.
    """
    d, t = _diffusers(), _transformers()
    base = share if share is not None else build_tiny_wan(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        transformer = _tiny_transformer(image_to_video=True)
        torch.manual_seed(seed + 1)
        image_encoder = t.CLIPVisionModel(
            t.CLIPVisionConfig(
                hidden_size=4,
                projection_dim=4,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=32,
                intermediate_size=16,
                patch_size=1,
            )
        )
    pipe = d.WanImageToVideoPipeline(
        tokenizer=base.tokenizer,
        text_encoder=base.text_encoder,
        vae=base.vae,
        scheduler=base.scheduler,
        # The PIL variant: the default CLIPImageProcessor wants torchvision.
        image_processor=t.CLIPImageProcessorPil(crop_size=32, size=32),
        image_encoder=image_encoder,
        transformer=transformer,
    )
    _to_eval(pipe)
    return pipe


def _to_eval(pipe: Any) -> None:
    # Freshly built modules are in training mode, where T5's dropout makes every run
    # differ; from_pretrained returns them in eval mode, so do the same.
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    pipe.set_progress_bar_config(disable=True)
