"""Tiny random-weight Wan, LTX-Video, LTX-2 and CogVideoX pipelines, built entirely offline.

They exercise the real diffusers code paths (tokenizer, text encoder, transformer,
scheduler, VAE decode, step callbacks, save/load, reference-to-video) in well under a
second per clip on a CPU, so the worker, the encoder and the provenance chain can be
tested end to end without model weights. Their frames are structured noise, not pictures.

diffusers' own tests (tests/pipelines/wan/test_wan.py, ``get_dummy_components``) fetch
a tokenizer and a T5 config from the Hub; here both are made in memory instead:

* tokenizer: a Unigram model over single characters with a Metaspace pre-tokenizer and
  a ``</s>`` post-processor (the shape of the real umt5 SentencePiece tokenizer),
  wrapped in ``PreTrainedTokenizerFast``;
* text encoder: a random ``UMT5EncoderModel`` (d_model 32, 2 layers). The brief says
  T5; UMT5 is the class Wan's pipelines declare (the real checkpoint is umt5-xxl), so a
  saved tiny pipeline reloads without a type warning. Both share T5's layout.

VAE, transformer and scheduler sizes follow diffusers' tests. Importing this module
imports torch: only the render worker and tests import it. ``build_tiny_wan_vace`` is
the tiny model's reference-to-video pipeline (Wan VACE), which renders cameos.

LTX-Video and CogVideoX (``build_tiny_ltx``, ``build_tiny_cogvideox`` and its separate
image-to-video checkpoint ``build_tiny_cogvideox_i2v``) use the classes their pipelines
declare: a ``T5Tokenizer`` over the same character vocabulary and a random
``T5EncoderModel``. Their sizes follow diffusers' tests/pipelines/ltx/test_ltx.py and
tests/pipelines/cogvideo/test_cogvideox.py, except where a real checkpoint's geometry
matters to fedisora: the tiny LTX VAE compresses 32x in space and 8x in time like
LTX-Video's (the tests' VAE compresses 4x and 4x), so a saved tiny LTX directory passes
the ``ltx`` family's 8k+1 / multiple-of-32 check; and both transformers have two blocks,
so First Block Cache has a block to skip. ``render.pipeline`` loads neither as ``"tiny"``:
they are for ``save_pretrained`` to a directory and loading it as an admin's model would.

LTX-2 (``build_tiny_ltx2``, with sound) is loaded by name, ``"tiny-ltx2"``: its text encoder
is a random ``Gemma3ForConditionalGeneration`` and its tokenizer a ``GemmaTokenizer`` over the
same characters, both made from configs in memory; see ``build_tiny_ltx2`` for its sizes.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import torch

from render.pipeline import quiet_library_warnings

quiet_library_warnings()  # building the tiny Wan image-to-video pipeline imports diffusers' Wan

__all__ = [
    "build_tiny_cogvideox",
    "build_tiny_cogvideox_i2v",
    "build_tiny_gemma_tokenizer",
    "build_tiny_ltx",
    "build_tiny_ltx2",
    "build_tiny_ltx2_i2v",
    "build_tiny_t5_tokenizer",
    "build_tiny_tokenizer",
    "build_tiny_wan",
    "build_tiny_wan_i2v",
    "build_tiny_wan_vace",
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


def _vocab() -> list[tuple[str, float]]:
    pieces = ["\u2581", *string.ascii_letters, *string.digits, *string.punctuation]
    return [(s, 0.0) for s in _SPECIALS] + [(p, -1.0) for p in pieces]


def build_tiny_tokenizer() -> Any:
    """A character-level Unigram tokenizer shaped like umt5's (``PreTrainedTokenizerFast``)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = _vocab()
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


def build_tiny_t5_tokenizer() -> Any:
    """The same character vocabulary as a ``T5Tokenizer`` (the class LTX and CogVideoX declare).

    transformers builds it in memory from the (piece, score) list: a Unigram model with a
    Metaspace pre-tokenizer and a ``</s>`` post-processor, ids 0-2 being pad, eos and unk.
    """
    tok = _transformers().T5Tokenizer(vocab=_vocab(), extra_ids=0, model_max_length=512)
    if (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) != (_PAD_ID, _EOS_ID, _UNK_ID):
        raise RuntimeError("T5Tokenizer assigned unexpected special-token ids")  # pragma: no cover
    return tok


_GEMMA_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")


def build_tiny_gemma_tokenizer() -> Any:
    """The character vocabulary as a ``GemmaTokenizer`` (the class LTX-2 declares).

    transformers 5 builds it in memory from a vocabulary and an (empty) merge list: a BPE
    over single characters with byte fallback, spaces as U+2581, ids 0-4 being pad, eos,
    bos, unk and mask as in Gemma's own.
    """
    pieces = ["\u2581", *string.ascii_letters, *string.digits, *string.punctuation]
    vocab = {piece: i for i, piece in enumerate((*_GEMMA_SPECIALS, *pieces))}
    return _transformers().GemmaTokenizer(vocab=vocab, merges=[], model_max_length=512)


def _seeded(seed: int, *builders: Callable[[], Any]) -> list[Any]:
    """Call each builder under ``torch.manual_seed(seed)``, in order; return what they built.

    Reseeding before each one makes a component's weights depend only on the seed, not on
    what was built before it. fork_rng keeps the caller's global RNG untouched.
    """
    built = []
    with torch.random.fork_rng(devices=[]):
        for build in builders:
            torch.manual_seed(seed)
            built.append(build())
    return built


def _tiny_t5_encoder(vocab_size: int, *, umt5: bool = False) -> Any:
    """A random T5 encoder (``UMT5EncoderModel`` for Wan, ``T5EncoderModel`` otherwise)."""
    t = _transformers()
    model, config = (t.UMT5EncoderModel, t.UMT5Config) if umt5 else (t.T5EncoderModel, t.T5Config)
    return model(
        config(
            vocab_size=vocab_size,
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


def _tiny_transformer_config() -> dict[str, Any]:
    """The tiny Wan transformer's sizes, shared by its text-, image- and reference-to-video
    variants (which add their own input channels)."""
    return {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 2,
        "attention_head_dim": 12,
        "out_channels": 16,
        "text_dim": _TEXT_DIM,
        "freq_dim": 256,
        "ffn_dim": 32,
        "num_layers": 2,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        # Per-axis rotary positions: 64 covers 161 frames (41 latent frames).
        "rope_max_seq_len": 64,
    }


def _tiny_transformer(*, image_to_video: bool) -> Any:
    return _diffusers().WanTransformer3DModel(
        **_tiny_transformer_config(),
        # Image-to-video concatenates 16 noise + 4 mask + 16 image-latent channels.
        in_channels=36 if image_to_video else 16,
        image_dim=4 if image_to_video else None,
    )


def build_tiny_wan(seed: int = 0) -> Any:
    """A random-weight ``WanPipeline``; the same ``seed`` gives the same weights."""
    d = _diffusers()
    tokenizer = build_tiny_tokenizer()
    vae, text_encoder, transformer = _seeded(
        seed,
        lambda: d.AutoencoderKLWan(
            base_dim=3,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        ),
        lambda: _tiny_t5_encoder(len(tokenizer), umt5=True),
        lambda: _tiny_transformer(image_to_video=False),
    )
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
    transformer, image_encoder = _seeded(
        seed + 1,
        lambda: _tiny_transformer(image_to_video=True),
        lambda: t.CLIPVisionModel(
            t.CLIPVisionConfig(
                hidden_size=4,
                projection_dim=4,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=32,
                intermediate_size=16,
                patch_size=1,
            )
        ),
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


def build_tiny_wan_vace(seed: int = 0, *, share: Any | None = None) -> Any:
    """A random-weight Wan 2.1 VACE-style ``WanVACEPipeline``: reference-to-video (cameos).

    Its ``WanVACETransformer3DModel`` is the text-to-video transformer plus a VACE branch on
    both blocks, fed 96 channels: the VAE latents of the conditioning video (16 of the part
    to keep and 16 of the part to make) and the 8x8 pixels of its mask per latent pixel.
    Reference stills become extra latent frames in front of the clip, as in Wan2.1-VACE.
    Tokenizer, text encoder, VAE and scheduler come from ``share`` when given, as they
    would from one Wan checkpoint family; the sizes follow diffusers' VACE tests.
    """
    d = _diffusers()
    base = share if share is not None else build_tiny_wan(seed)
    [transformer] = _seeded(
        seed + 2,
        lambda: d.WanVACETransformer3DModel(
            **_tiny_transformer_config(),
            in_channels=16,
            vace_layers=[0, 1],
            vace_in_channels=96,
        ),
    )
    pipe = d.WanVACEPipeline(
        tokenizer=base.tokenizer,
        text_encoder=base.text_encoder,
        vae=base.vae,
        scheduler=base.scheduler,
        transformer=transformer,
    )
    _to_eval(pipe)
    return pipe


def build_tiny_ltx(seed: int = 0) -> Any:
    """A random-weight ``LTXPipeline`` with LTX-Video's VAE geometry (32x space, 8x time).

    Its VAE is timestep-conditioned, as LTX-Video 0.9.1 and later are, so decoding takes
    the ``decode_timestep`` / ``decode_noise_scale`` path. ``LTXImageToVideoPipeline(
    **pipe.components)`` is its image-to-video pipeline (same weights; the VAE encodes
    the still), as ``render.pipeline.load_pipeline`` builds it.
    """
    d = _diffusers()
    tokenizer = build_tiny_t5_tokenizer()
    transformer, vae, text_encoder = _seeded(
        seed,
        lambda: d.LTXVideoTransformer3DModel(
            in_channels=8,
            out_channels=8,
            patch_size=1,
            patch_size_t=1,
            num_attention_heads=4,
            attention_head_dim=8,
            cross_attention_dim=32,
            num_layers=2,
            caption_channels=_TEXT_DIM,
        ),
        lambda: d.AutoencoderKLLTXVideo(
            latent_channels=8,
            block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8),
            layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1, 1),
            # LTX-Video's own: patches of 4 and three 2x stages make 32x; three 2x in time, 8x.
            spatio_temporal_scaling=(True, True, True, False),
            decoder_spatio_temporal_scaling=(True, True, True, False),
            patch_size=4,
            patch_size_t=1,
            timestep_conditioning=True,
            encoder_causal=True,
            decoder_causal=False,
        ),
        lambda: _tiny_t5_encoder(len(tokenizer)),
    )
    pipe = d.LTXPipeline(
        # Shifted by sequence length over LTX-Video's range (0.95 to 2.05), as it samples.
        scheduler=d.FlowMatchEulerDiscreteScheduler(
            use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05
        ),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    _to_eval(pipe)
    return pipe


_LTX2_TEXT_DIM = 32
_LTX2_TEXT_LAYERS = 2


def _tiny_gemma3(vocab_size: int) -> Any:
    """A random ``Gemma3ForConditionalGeneration`` (LTX-2's text encoder class): a two-layer
    text model 32 wide and a one-layer SigLIP vision tower the pipeline never runs."""
    t = _transformers()
    return t.Gemma3ForConditionalGeneration(
        t.Gemma3Config(
            text_config={
                "vocab_size": vocab_size,
                "hidden_size": _LTX2_TEXT_DIM,
                "intermediate_size": 37,
                "num_hidden_layers": _LTX2_TEXT_LAYERS,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "head_dim": 8,
                "sliding_window": 16,
                "max_position_embeddings": 512,
                "pad_token_id": 0,
                "eos_token_id": 1,
                "bos_token_id": 2,
            },
            vision_config={
                "hidden_size": 8,
                "intermediate_size": 16,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 8,
                "patch_size": 4,
            },
            mm_tokens_per_image=4,
        )
    )


def build_tiny_ltx2(seed: int = 0) -> Any:
    """A random-weight ``LTX2Pipeline``: video and sound rendered jointly, as LTX-2 does.

    Sizes follow diffusers' LTX-2 tests (tests/pipelines/ltx2) except where LTX-2's real
    geometry matters to fedisora:

    * the video VAE compresses 32x in space and 8x in time like LTX-2's (patches of 4, then
      spatial, temporal and two spatio-temporal 2x stages; three spatio-temporal 2x stages
      back up), so the ``tiny-ltx2`` family keeps the ``ltx2`` family's 8k+1 / multiple-of-32
      rules;
    * the sound path keeps LTX-2's clock: the audio VAE works on 16 kHz mel frames of 160
      samples (8 mel bins here), 4 mel frames to a latent step, and the vocoder upsamples
      each mel frame 240x (6 x 5 x 8) to 24 kHz stereo, LTX-2's output rate. The tests'
      vocoder upsamples 4x and labels it 16 kHz, which would play 40 times too fast.

    The text encoder is a random ``Gemma3ForConditionalGeneration`` (``_tiny_gemma3``);
    its hidden states (3 of them, 32 wide) feed ``LTX2TextConnectors``.
    ``build_tiny_ltx2_i2v`` is its image-to-video pipeline (same weights).
    """
    d = _diffusers()
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    tokenizer = build_tiny_gemma_tokenizer()
    mel_bins, audio_latent_channels = 8, 2
    text_encoder, transformer, connectors, vae, audio_vae, vocoder = _seeded(
        seed,
        lambda: _tiny_gemma3(len(tokenizer)),
        lambda: d.LTX2VideoTransformer3DModel(
            in_channels=4,
            out_channels=4,
            patch_size=1,
            patch_size_t=1,
            num_attention_heads=2,
            attention_head_dim=8,
            cross_attention_dim=16,
            # latent channels x latent mel bins (mel bins / 4)
            audio_in_channels=audio_latent_channels * mel_bins // 4,
            audio_out_channels=audio_latent_channels * mel_bins // 4,
            audio_num_attention_heads=2,
            audio_attention_head_dim=4,
            audio_cross_attention_dim=8,
            num_layers=2,
            qk_norm="rms_norm_across_heads",
            caption_channels=_LTX2_TEXT_DIM,
            rope_double_precision=False,
            rope_type="split",
        ),
        lambda: LTX2TextConnectors(
            caption_channels=_LTX2_TEXT_DIM,
            text_proj_in_factor=_LTX2_TEXT_LAYERS + 1,
            video_connector_num_attention_heads=4,
            video_connector_attention_head_dim=8,
            video_connector_num_layers=1,
            video_connector_num_learnable_registers=None,
            audio_connector_num_attention_heads=4,
            audio_connector_attention_head_dim=8,
            audio_connector_num_layers=1,
            audio_connector_num_learnable_registers=None,
            connector_rope_base_seq_len=32,
            rope_double_precision=False,
            rope_type="split",
        ),
        lambda: d.AutoencoderKLLTX2Video(
            latent_channels=4,
            block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8),
            layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1),
            spatio_temporal_scaling=(True, True, True, True),
            decoder_spatio_temporal_scaling=(True, True, True),
            decoder_inject_noise=(False, False, False, False),
            upsample_residual=(False, False, False),
            upsample_factor=(1, 1, 1),
            # The config's own formula would say 64x / 16x; the stages make 32x / 8x.
            spatial_compression_ratio=32,
            temporal_compression_ratio=8,
            patch_size=4,
            patch_size_t=1,
            decoder_causal=False,
        ),
        lambda: d.AutoencoderKLLTX2Audio(
            base_channels=audio_latent_channels * mel_bins // 4,
            ch_mult=(1, 2, 4),
            num_res_blocks=1,
            resolution=32,
            latent_channels=audio_latent_channels,
            sample_rate=16000,
            mel_hop_length=160,
            mel_bins=mel_bins,
        ),
        lambda: LTX2Vocoder(
            in_channels=2 * mel_bins,  # stereo mel frames
            hidden_channels=32,
            out_channels=2,
            upsample_kernel_sizes=[12, 10, 16],
            upsample_factors=[6, 5, 8],
            resnet_kernel_sizes=[3],
            resnet_dilations=[[1, 3, 5]],
            output_sampling_rate=24000,
        ),
    )
    pipe = d.LTX2Pipeline(
        scheduler=d.FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )
    _to_eval(pipe)
    return pipe


def build_tiny_ltx2_i2v(seed: int = 0, *, share: Any | None = None) -> Any:
    """The tiny LTX-2's ``LTX2ImageToVideoPipeline``: the same modules (``share``'s when
    given), the still encoded by the video VAE as the first latent frame."""
    d = _diffusers()
    base = share if share is not None else build_tiny_ltx2(seed)
    pipe = d.LTX2ImageToVideoPipeline(**base.components)
    _to_eval(pipe)
    return pipe


def _tiny_cogvideox_transformer(**kwargs: Any) -> Any:
    """A two-block ``CogVideoXTransformer3DModel`` for the ``tiny-cogvideox`` geometry.

    The sample sizes are that family's 49 frames at 112x64; ``kwargs`` add the heads, the
    input channels and, for image-to-video, the positional embeddings.
    """
    return _diffusers().CogVideoXTransformer3DModel(
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=_TEXT_DIM,
        num_layers=2,
        sample_width=14,  # latent width: 112 px / 8
        sample_height=8,  # latent height: 64 px / 8
        sample_frames=49,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
        **kwargs,
    )


def build_tiny_cogvideox(seed: int = 0) -> Any:
    """A random-weight CogVideoX 1.0 (2B-style) ``CogVideoXPipeline``.

    Like CogVideoX-2b it adds fixed sin-cos positional embeddings to the prompt tokens and
    the video patches, so the prompt must be encoded to exactly ``max_text_seq_length``
    tokens (16 here, 226 in the real models); the VAE compresses 8x in space and 4x in time.
    The ``sample_*`` sizes are the ``tiny-cogvideox`` family's 49 frames at 112x64.
    """
    d = _diffusers()
    tokenizer = build_tiny_t5_tokenizer()
    transformer, vae, text_encoder = _seeded(
        seed,
        lambda: _tiny_cogvideox_transformer(
            num_attention_heads=4, attention_head_dim=8, in_channels=4
        ),
        lambda: d.AutoencoderKLCogVideoX(
            in_channels=3,
            out_channels=3,
            down_block_types=("CogVideoXDownBlock3D",) * 4,
            up_block_types=("CogVideoXUpBlock3D",) * 4,
            block_out_channels=(8, 8, 8, 8),
            latent_channels=4,
            layers_per_block=1,
            norm_num_groups=2,
            temporal_compression_ratio=4,
        ),
        lambda: _tiny_t5_encoder(len(tokenizer)),
    )
    pipe = d.CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        # CogVideoX-2b's scheduler: v-prediction DDIM, trailing spacing, zero terminal SNR.
        scheduler=d.CogVideoXDDIMScheduler(
            prediction_type="v_prediction",
            timestep_spacing="trailing",
            rescale_betas_zero_snr=True,
            clip_sample=False,
        ),
    )
    _to_eval(pipe)
    return pipe


def build_tiny_cogvideox_i2v(seed: int = 0, *, share: Any | None = None) -> Any:
    """A random-weight CogVideoX-5b-I2V-shaped ``CogVideoXImageToVideoPipeline``.

    Its transformer takes the noise and the encoded still side by side (8 input channels)
    and, like CogVideoX-5b-I2V, has rotary and learned positional embeddings: learned ones
    only fit the sample size, 49 frames at 112x64 here (720x480 in the real model).
    Tokenizer, text encoder, VAE and scheduler come from ``share`` when given.
    """
    d = _diffusers()
    base = share if share is not None else build_tiny_cogvideox(seed)
    [transformer] = _seeded(
        seed + 1,
        lambda: _tiny_cogvideox_transformer(
            # Rotary embeddings split each head's dimension three ways: 16, not 8.
            num_attention_heads=2,
            attention_head_dim=16,
            in_channels=8,
            use_rotary_positional_embeddings=True,
            use_learned_positional_embeddings=True,
        ),
    )
    pipe = d.CogVideoXImageToVideoPipeline(
        tokenizer=base.tokenizer,
        text_encoder=base.text_encoder,
        vae=base.vae,
        transformer=transformer,
        scheduler=base.scheduler,
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
