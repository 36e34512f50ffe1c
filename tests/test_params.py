"""params.yaml validation: every bad value gives one line naming the key, the value and what is allowed."""

import dataclasses
import math
import re
import sys
import types
import typing

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_gan.gan.families import FAMILIES
from mnist_gan.gan.losses import OBJECTIVES
from mnist_gan.settings import configs
from mnist_gan.settings.configs import CONFIGS, TOP
from mnist_gan.settings.params import (
    BOUNDS,
    FIELDS,
    ParamsError,
    adapter,
    allowed,
    check_value,
    load_params,
    parse,
    updated,
    validate,
)
from stages import sample
from tests.conftest import ROOT, cli


def good() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def error_for(raw) -> str:
    with pytest.raises(ParamsError) as err:
        validate(raw)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_the_committed_params_are_valid():
    params, raw = load_params(ROOT / "params.yaml"), yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params.train.lr == raw["lr"] and params.train.beta1 == raw["beta1"] and params.gan.model == "dcgan"


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("lr", 0, "> 0.0"),
        ("lr", -1.0, "> 0.0"),
        ("lr", "fast", "finite number"),
        ("lr", float("nan"), "finite number"),
        ("batch_size", 0, "integer >= 1"),
        ("batch_size", 12.5, "integer >= 1"),
        ("batch_size", True, "integer >= 1"),
        ("epochs", "3", "integer >= 1"),
        ("model", "transformer", "one of " + " | ".join(FAMILIES)),
        ("g_hidden", [256, -1], "list of 1 to 8 integers"),
        ("tensorboard", "yes", "true or false"),
        ("beta1", 1.0, "< 1.0"),
        ("loss", "foo", "one of " + " | ".join(OBJECTIVES)),
        ("ema_decay", 1.5, "< 1.0"),
        ("ema_decay", -0.1, ">= 0.0"),
        ("lr_d_ratio", 0, "> 0.0"),
        ("d_steps", 0, "integer >= 1"),
        ("r1_gamma", -1.0, ">= 0.0"),
        ("spectral_norm", "on", "true or false"),
        ("conditional", 1, "true or false"),
        ("clusters", -1, "an integer >= 0 and <= 1000"),
        ("clusters", 2.5, "an integer >= 0 and <= 1000"),
        ("ema_rampup", 0, "null or a finite number > 0.0 and <= 1.0"),
        ("ema_rampup", "fast", "null or a finite number > 0.0 and <= 1.0"),
        ("gp_weight", -1, "null or a finite number >= 0.0"),
        ("precision", "fp16", "one of auto | fp32 | bf16"),
    ],
)
def test_bad_values_name_key_value_and_allowed(key, value, allowed):
    raw = good()
    raw[key] = value
    message = error_for(raw)
    assert f"{key} = " in message and allowed in message


def test_min_accuracy_must_be_reachable():
    """An accuracy above 1 could only fail, after minutes of training: refused up front."""
    for bad in (2, 0, -0.5):
        raw = good()
        raw["classifier"]["min_accuracy"] = bad
        assert "classifier.min_accuracy" in error_for(raw)
    raw = good()
    raw["classifier"]["min_accuracy"] = 1
    assert validate(raw)["classifier"]["min_accuracy"] == 1.0


def test_bad_section_values():
    raw = good()
    raw["sample"]["n_images"] = -3
    assert "sample.n_images = -3" in error_for(raw)
    raw = good()
    raw["fetch"]["source"] = "ftp"
    assert "fetch.source = 'ftp'" in error_for(raw) and "auto | torchvision | pypi" in error_for(raw)


def test_unknown_and_missing_keys():
    raw = good()
    raw["learning_rate"] = 0.1
    assert "unknown key learning_rate" in error_for(raw)
    raw = good()
    del raw["sample"]["seed"]
    assert "missing key sample.seed" in error_for(raw)
    raw = good()
    raw["sample"]["colour"] = "red"
    assert "unknown key sample.colour" in error_for(raw)
    raw = good()
    raw["learning_rate"] = raw.pop("lr")  # misspelt: named, with the keys allowed, before the key it stands for
    assert "unknown key learning_rate (allowed here: model," in error_for(raw)


def test_model_and_image_size_must_agree():
    raw = good()
    raw["model"] = "dcgan64"
    assert "normalize.image_size = 28 does not fit model = 'dcgan64'; expected 64" in error_for(raw)


@pytest.mark.parametrize("text", ["2e-4", "2.0e-4", "2E-4", "0.0002", ".0002", "+2e-4", "2.e-4", "0.2e-3"])
def test_every_float_spelling_reads_as_a_float(tmp_path, text):
    body = (ROOT / "params.yaml").read_text()
    body = re.sub(r"^lr: .*$", f"lr: {text}", body, flags=re.M)
    (tmp_path / "params.yaml").write_text(body)
    assert load_params(tmp_path / "params.yaml").train.lr == pytest.approx(2e-4)


def test_yaml_syntax_error_is_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("lr: [0.1\nseed: 1\n")
    with pytest.raises(ParamsError, match="not valid YAML at line"):
        load_params(tmp_path / "params.yaml")


def test_every_declared_key_says_every_bound_and_choice_it_checks():
    """The words of a refusal are read from pydantic's JSON schema of the field, so each bound and choice pydantic
    enforces is in them, for every key, whatever its type (an unknown kind of schema fails here, not in a user's
    face)."""

    def parts(schema: dict):
        yield schema
        for sub in [*schema.get("anyOf", []), *([schema["items"]] if "items" in schema else [])]:
            yield from parts(sub)

    for key in FIELDS:
        schema, words = adapter(key).json_schema(), allowed(key)
        if schema.get("allowed"):
            assert words == schema["allowed"]
            continue
        for part in parts(schema):
            assert all(f"{op} {part[k]}" in words for k, op in BOUNDS.items() if k in part), (key, words)
            assert all(str(choice) in words for choice in part.get("enum", [])), (key, words)
        assert ("null" in words) == ({"type": "null"} in schema.get("anyOf", [])), (key, words)


def test_check_value_is_the_same_rule_for_cli_options():
    assert check_value("sample.n_images", 5) == 5
    with pytest.raises(ParamsError, match=r"lr = -0.1 is not allowed; expected a finite number > 0.0"):
        check_value("lr", -0.1)


CHOICES = sorted({*FAMILIES, *OBJECTIVES, "auto", "fp32", "bf16", "relu", "leaky_relu", "dcgan", "pytorch"})
yaml_values = st.recursive(  # anything YAML can hold, biased towards values near the rules' edges
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.integers(-2, 300)
    | st.floats(allow_nan=True)
    | st.floats(-1.0, 2.0)
    | st.text(max_size=8)
    | st.sampled_from(CHOICES),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
all_keys = list(FIELDS)


def declared_type(key: str):
    """The type of the field declaring `key`, its bounds and item bounds dropped: what a value's Python type must
    be, independent of pydantic's own check."""
    hint = FIELDS[key].annotation
    if typing.get_origin(hint) is typing.Literal:
        return str  # the choices: checked apart, below
    if typing.get_origin(hint) is list:
        return list[int]
    return hint


def fits(value, hint) -> bool:
    """Whether `value` is of type `hint` the strict way YAML values should be: an int is no bool, a float is
    finite, a list holds only its item type."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(fits(v, typing.get_args(hint)[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, float) and math.isfinite(value)
    return isinstance(value, hint)


@settings(max_examples=400, deadline=None)
@given(key=st.sampled_from(all_keys), value=yaml_values)
def test_fuzz_any_value_is_accepted_as_declared_or_refused_in_one_line(key, value):
    """Refused: one line naming the key. Accepted: the value unchanged (an int may become its float), of the type
    its field declares, one of its choices if it has any, and a mapping that builds the stages' configs."""
    raw = good()
    *section, leaf = key.split(".")
    (raw[section[0]] if section else raw)[leaf] = value
    try:
        out, refused = validate(raw), None
    except ParamsError as e:
        out, refused = None, str(e)
    if refused is not None:
        assert "\n" not in refused
        assert leaf in refused or "image_size" in refused  # the key named, or the size rule that spans two keys
        return
    got = (out[section[0]] if section else out)[leaf]
    assert got == value and fits(got, declared_type(key)), (key, value, got)
    hint = FIELDS[key].annotation
    assert typing.get_origin(hint) is not typing.Literal or got in typing.get_args(hint), (key, got)
    parse(out)


def test_every_setting_is_declared_once_with_help_and_no_default():
    """configs.py is the one declaration: a setting has a help line and no default of its own (its value lives in
    params.yaml only); a derived field has a default and no help; no key is declared by two configs."""
    seen = []
    for group, config in CONFIGS.items():
        for name, field in config.__pydantic_fields__.items():
            if field.description:
                assert field.is_required(), f"{config.__name__}.{name} has a default; params.yaml holds the value"
                seen.append(name if group in TOP else f"{group}.{name}")
            else:
                assert not field.is_required(), f"{config.__name__}.{name}: a derived field needs a default"
    assert len(seen) == len(set(seen)) == len(all_keys)
    assert sorted(seen) == sorted(yaml_keys(good()))  # params.yaml sets exactly the declared keys


def yaml_keys(raw: dict) -> list[str]:
    return [f"{k}.{s}" for k, v in raw.items() if isinstance(v, dict) for s in v] + [
        k for k, v in raw.items() if not isinstance(v, dict)
    ]


def test_the_params_come_back_as_the_file_says():
    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params.as_dict() == validate(raw)
    assert updated(params, lr=0.001, **{"sample.seed": 3}).train.lr == 0.001
    assert updated(params, **{"sample.seed": 3}).sample == dataclasses.replace(params.sample, seed=3)
    assert params.flat()["sample.seed"] == params.sample.seed and params.flat()["lr"] == params.train.lr
    with pytest.raises(ParamsError, match="no key learning_rate"):
        updated(params, learning_rate=0.1)
    with pytest.raises(ParamsError, match="lr = 2.0 is not allowed"):  # no path builds params unchecked
        updated(params, lr=2.0)


def test_a_config_changed_in_code_is_checked_too():
    """`dataclasses.replace` on a config (the train stage's CLI overrides) validates like params.yaml does."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        dataclasses.replace(load_params(ROOT / "params.yaml").train, epochs=0)


def test_choices_of_a_registry_are_its_keys():
    """model, loss, init and lr_schedule take exactly their registries' names, which the torch-free settings
    declare (configs.MODELS, ...) and each registry checks at import: the settings never import the GAN layer."""
    from mnist_gan.gan.models import INITS
    from mnist_gan.gan.schedules import SCHEDULES

    for key, registry in (("model", FAMILIES), ("loss", OBJECTIVES), ("init", INITS), ("lr_schedule", SCHEDULES)):
        for name in registry:
            assert check_value(key, name) == name
        with pytest.raises(ParamsError, match="one of " + " \\| ".join(registry)):
            check_value(key, "wasserstein")
    assert {k: f.image_size for k, f in FAMILIES.items()} == configs.MODELS


def test_help_of_a_stage_option_is_the_settings_own():
    from mnist_gan.settings.configs import help_of

    result = cli().invoke(sample.app, ["--help"])
    assert help_of("sample.n_images") in result.output


def test_the_settings_modules_import_no_torch():
    """configs (every setting), params and the metric registry are torch-free: the server, the console script and
    any tool can read them without torch."""
    from tests.conftest import run

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import mnist_gan.settings.configs, mnist_gan.settings.params\n"
        "import mnist_gan.evaluation.registry, mnist_gan.cli, mnist_gan.errors\n"
        "assert mnist_gan.settings.configs.help_of('lr')\nprint('ok')"
    )
    assert run([sys.executable, "-c", code]).stdout.strip() == "ok"


def test_params_yaml_says_what_each_declaration_says():
    """Every key's comment in params.yaml is its declared help, word for word (`make docs` writes them), and the
    same help is the stage options' (--help) and docs/settings.md's."""
    from study.docs import params_comments

    text = (ROOT / "params.yaml").read_text()
    assert params_comments(text) == text, "params.yaml's comments differ from the declarations: run make docs"
    assert all(f"| {FIELDS[k].description.replace('|', chr(92) + '|')} |" in SETTINGS_PAGE for k in FIELDS)


SETTINGS_PAGE = (ROOT / "docs" / "settings.md").read_text()
