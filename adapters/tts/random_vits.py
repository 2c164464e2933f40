"""Build a randomly initialised VITS checkpoint with a Vietnamese character set (tests and benchmarks only).

Stock coqui models have no Vietnamese voice and nothing may be downloaded, so tests and `bench/tts.py` make
a model here, save it like a trained one (`{"model": state_dict}` + config.json) and load it back through
`CoquiSynthesizer`, exactly the path a real checkpoint takes. The audio is noise; its compute is real. Needs
the `coqui` extra.
"""

from __future__ import annotations

from pathlib import Path

from keng.domain.vitext import SPEAKABLE

VI_CHARACTERS = "".join(sorted({ch.lower() for ch in SPEAKABLE if ch.isalpha()}))
VI_PUNCTUATION = " .,!?;:-()\"'"


def build_random_vits(out_dir: Path, tiny: bool = True, seed: int = 0) -> tuple[Path, Path]:
    """Write model.pth and config.json under out_dir; return their paths.

    tiny=True gives a model of about a million parameters that synthesises in milliseconds; tiny=False keeps
    the default `VitsArgs` (about 83 M parameters, the standard size).
    """
    import torch
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits, VitsArgs

    torch.manual_seed(seed)
    if tiny:
        # resblock type 1 needs three dilations; the product of upsample rates must equal the hop length
        # (256).
        args = VitsArgs(
            hidden_channels=16,
            hidden_channels_ffn_text_encoder=32,
            num_heads_text_encoder=2,
            num_layers_text_encoder=1,
            num_layers_flow=1,
            num_layers_posterior_encoder=1,
            resblock_type_decoder="1",
            resblock_kernel_sizes_decoder=[3],
            resblock_dilation_sizes_decoder=[[1, 3, 5]],
            upsample_rates_decoder=[8, 8, 4],
            upsample_initial_channel_decoder=32,
            upsample_kernel_sizes_decoder=[16, 16, 8],
            use_sdp=False,
            init_discriminator=False,
            dropout_p_duration_predictor=0.0,
        )
    else:
        args = VitsArgs()
    config = VitsConfig(
        model_args=args,
        use_phonemes=False,
        text_cleaner="basic_cleaners",
        characters=CharactersConfig(
            characters_class="TTS.tts.models.vits.VitsCharacters",
            pad="<PAD>",
            eos="<EOS>",
            bos="<BOS>",
            blank="<BLNK>",
            characters=VI_CHARACTERS,
            punctuations=VI_PUNCTUATION,
        ),
    )
    config.audio.sample_rate = 22050
    model = Vits(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path, config_path = out_dir / "model.pth", out_dir / "config.json"
    torch.save({"model": model.state_dict()}, model_path)
    config.save_json(str(config_path))
    return model_path, config_path
