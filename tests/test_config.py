"""The config: ranges live with the defaults, errors are one line naming key, value and rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgrec.config import BASELINE_NAMES, Config, ConfigError, HGNNConfig


def _load(tmp_path: Path, text: str, **overrides: object) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return Config.from_yaml(path, dict(overrides) or None)


def test_baseline_names_are_the_registry() -> None:
    from hgrec.recommenders.registry import BASELINES

    assert set(BASELINE_NAMES) == set(BASELINES)


def test_defaults_pass_their_own_ranges() -> None:
    cfg = Config.model_validate({"data": {"adapter": "synthetic"}})
    assert Config.model_validate(cfg.model_dump()) == cfg


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("runtime", "seed", 2**32),
        ("runtime", "seed", -1),
        ("two_tower", "temperature", 0),
        ("two_tower", "temperature", -1.0),
        ("two_tower", "lr", 0),
        ("two_tower", "layers", []),
        ("two_tower", "layers", [64, 0]),
        ("hgnn", "model.fanouts", [0]),
        ("hgnn", "training.lr", -1e-3),
        ("baselines", "enabled", ["bpr"]),
        ("baselines", "als.factors", []),
        ("baselines", "ease.lambdas", [0.0]),
        ("eval", "hr_k", 0),
        ("eval", "protocols", []),
        ("graph", "events", []),
    ],
)
def test_out_of_range_is_one_line_naming_key_and_value(
    tmp_path: Path, section: str, key: str, value: object
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "data: {adapter: synthetic}\n", **{f"{section}.{key}": value})
    msg = str(info.value)
    assert "\n" not in msg and "config.yaml" in msg
    assert f"{section}.{key}" in msg and "(got " in msg


def test_flag_overrides_are_named_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("data: {adapter: synthetic}\n")
    with pytest.raises(ConfigError, match=r"runtime\.seed \(--seed\): .* \(got -3\)"):
        Config.from_yaml(path, {"runtime.seed": -3}, {"runtime.seed": "--seed"})


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "runtime:\n  seed: 0\n  threads: [1\n")
    assert str(info.value).endswith(
        "config.yaml, line 4, column 1: invalid YAML: while parsing a flow sequence (from line 3, "
        "column 12); expected ',' or ']', but got '<stream end>'"
    )


def test_non_utf8_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes("data: {name: caf\u00e9}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        Config.from_yaml(path)


def test_hgnn_w_users_params_are_hgnn_settings(tmp_path: Path) -> None:
    text = "data: {adapter: synthetic}\nbaselines: {hgnn_w_users: {params: {marign: 1}}}\n"
    with pytest.raises(ConfigError, match=r"unknown HGNN setting 'marign'"):
        _load(tmp_path, text)
    ok = "data: {adapter: synthetic}\nbaselines: {hgnn_w_users: {params: {max_epochs: 2}}}\n"
    assert _load(tmp_path, ok).baselines.hgnn_w_users.params == {"max_epochs": 2}


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_configs_load(path: Path) -> None:
    cfg = Config.from_yaml(path)
    assert cfg.eval.query_protocols == ["cold", "warm"]
    if "new-items" in path.name:
        assert "new_items" in cfg.eval.protocols


def test_new_items_needs_a_query_protocol(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="new_items adds to them"):
        _load(tmp_path, "eval: {protocols: [new_items]}\n")
    with pytest.raises(ConfigError, match="new_items_share"):
        _load(tmp_path, "eval: {new_items_share: 1.0}\n")


def test_hgnn_settings_of_an_older_manifest_are_read() -> None:
    """Runs written before the hgnn sections recorded the settings flat; --reuse-hgnn and
    add-items read both forms."""
    cfg = HGNNConfig().updated(max_epochs=4, fanouts=[5, 3])
    flat = {"enabled": True, **{k: v for section in ("model", "sampler", "training", "inference")
                               for k, v in cfg.model_dump()[section].items()}}
    flat["inference_batch_edges"] = flat.pop("batch_edges")  # as the flat section named it
    assert HGNNConfig.from_saved(cfg.model_dump()) == cfg
    assert HGNNConfig.from_saved(flat) == cfg
    with pytest.raises(ValueError, match="unknown HGNN setting 'marign'"):
        HGNNConfig.from_saved({"marign": 1})
