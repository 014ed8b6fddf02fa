import pytest

from ganforge.config import TrainConfig, parse_set, to_yaml
from ganforge.errors import ConfigError
from ganforge.recipes import resolve


def test_defaults_resolve_to_the_conditional_dcgan_on_digits():
    cfg = resolve()
    assert cfg.recipe == "cgan" and cfg.data == "digits" and cfg.steps == 3000 and cfg.net.width == 32
    assert resolve(flags={"data": "faces100"}).recipe == "dcgan"  # unlabelled sets stay unconditional
    old = resolve(flags={"recipe": "dcgan"})  # the former default, by name
    assert old.net.z_discrete == 12 and old.reg.info == 1.0 and old.reg.mbstd == 4


def test_2d_data_defaults_to_vanilla():
    assert resolve(flags={"data": "ring8"}).recipe == "vanilla"
    assert resolve(flags={"data": "grid:9:1:0.1"}).recipe == "vanilla"


def test_precedence_file_then_flags_then_set():
    cfg = resolve({"steps": 10, "optim": {"lr_g": 0.1}}, {"steps": 20}, ["steps=30", "optim.lr_d=0.5"])
    assert cfg.steps == 30 and cfg.optim.lr_g == 0.1 and cfg.optim.lr_d == 0.5


def test_set_parses_yaml_values():
    assert parse_set("ema.enabled=false") == ("ema.enabled", False)
    assert parse_set("net.width=32") == ("net.width", 32)
    cfg = resolve(sets=["ema.enabled=false", "channels=null", "optim.lr_g=1e-4"])
    assert cfg.ema.enabled is False and cfg.channels is None and cfg.optim.lr_g == 1e-4


@pytest.mark.parametrize("item, message", [
    ("nope=1", "unknown config key 'nope'"),
    ("optim.nope=1", "unknown config key 'optim.nope'"),
    ("steps=-5", "steps=-5 is not allowed; expected an integer >= 1"),
    ("batch_size=0", "batch_size=0 is not allowed"),
    ("optim.lr_d=0", "optim.lr_d=0.0 is not allowed; expected a number > 0"),
    ("steps=abc", "steps: 'abc' is not a valid int"),
    ("optim.lr_decay=step", "expected none, linear or cosine"),
    ("ema.enabled=maybe", "not a valid bool"),
    ("justakey", "--set expects key=value"),
])
def test_bad_values_name_the_key(item, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(sets=[item])


def test_yaml_round_trip():
    import yaml

    from ganforge.config import from_dict

    cfg = resolve(sets=["steps=7", "net.width=16"])
    again = from_dict(yaml.safe_load(to_yaml(cfg)))
    assert again == cfg and isinstance(again, TrainConfig)
