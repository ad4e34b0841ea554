"""One model contract, run on `LearngeneModel` and on `DescendantForImageClassification` with several layouts.

The tester geometry is transformers' ViT tester's (batch 13, image 30, patch 2, hidden 32, 2 layers, 4 heads, MLP 37,
dropout 0.1). The checks are what a transformers user leans on (the ones transformers' common model tests make of
every in-tree model, written here for these two classes): shapes, hidden states and attentions, the attention
implementations, save / load, problem types, gradient checkpointing, the config's depth, input embeddings, training
mode and determinism.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutput

from hf_learngene import DescendantForImageClassification, LearngeneConfig, LearngeneModel
from hf_learngene.modeling_learngene import LearngenePatchEmbeddings


class ContractTester:
    """A tiny config and inputs for one model variant (`layout=None` is the bare `LearngeneModel`)."""

    batch_size = 13
    image_size = 30
    patch_size = 2
    num_channels = 3
    hidden_size = 32
    num_hidden_layers = 2
    num_attention_heads = 4
    intermediate_size = 37
    hidden_act = "gelu"
    hidden_dropout_prob = 0.1
    attention_probs_dropout_prob = 0.1
    num_labels = 10
    seq_length = (image_size // patch_size) ** 2 + 1

    def __init__(self, layout: str | None = None, new_layer_init: str = "trunc_normal"):
        self.layout = layout
        self.new_layer_init = new_layer_init

    @property
    def model_class(self):
        return LearngeneModel if self.layout is None else DescendantForImageClassification

    @property
    def is_descendant(self) -> bool:
        return self.layout is not None

    def get_config(self, **overrides) -> LearngeneConfig:
        # Only the depth and the layout are given: the learngene's layer count follows from them.
        values = dict(
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.num_channels,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
        )
        if self.is_descendant:
            values.update(layout=self.layout, new_layer_init=self.new_layer_init, num_labels=self.num_labels)
        return LearngeneConfig(**{**values, **overrides})

    def build(self, seed: int = 0, randomise: bool = True, **overrides):
        """The model in eval mode; `randomise` gives every tensor non-trivial values (biases are zeros after init)."""
        torch.manual_seed(seed)
        model = self.model_class(self.get_config(**overrides))
        if randomise:
            generator = torch.Generator().manual_seed(seed + 100)
            with torch.no_grad():
                for param in model.parameters():
                    param.add_(torch.randn(param.shape, generator=generator) * 0.1)
        return model.eval()

    def pixel_values(self, batch: int | None = None, seed: int = 0) -> torch.Tensor:
        shape = (batch or self.batch_size, self.num_channels, self.image_size, self.image_size)
        return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


VARIANTS = {
    "learngene": ContractTester(),
    "LL": ContractTester("LL"),
    "RL": ContractTester("RL"),
    "LR": ContractTester("LR"),
    "LR-mimetic": ContractTester("LR", new_layer_init="mimetic"),
}
DESCENDANTS = [name for name, tester in VARIANTS.items() if tester.is_descendant]


@pytest.fixture(params=list(VARIANTS))
def tester(request) -> ContractTester:
    return VARIANTS[request.param]


@pytest.fixture(params=DESCENDANTS)
def descendant_tester(request) -> ContractTester:
    return VARIANTS[request.param]


def main_output(tester: ContractTester, outputs) -> torch.Tensor:
    return outputs.logits if tester.is_descendant else outputs.last_hidden_state


def layers_in_order(model) -> list:
    return model.descendant_layers() if isinstance(model, DescendantForImageClassification) else list(model.layers)


def scalar_loss(tester: ContractTester, model, pixel_values: torch.Tensor) -> torch.Tensor:
    if tester.is_descendant:
        labels = torch.arange(pixel_values.shape[0]) % tester.num_labels
        return model(pixel_values=pixel_values, labels=labels).loss
    return model(pixel_values=pixel_values).last_hidden_state.pow(2).mean()


@contextmanager
def transformers_warnings():
    """Collect what transformers logs at WARNING and above (its library logger does not propagate to the root, so
    pytest's caplog never sees it)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect(level=logging.WARNING)
    library_logger = logging.getLogger("transformers")
    library_logger.addHandler(handler)
    try:
        yield records
    finally:
        library_logger.removeHandler(handler)


# --- shapes, depth, hidden states -----------------------------------------------------------------------------


def test_forward_shapes_and_output_type(tester):
    model = tester.build()
    with torch.no_grad():
        outputs = model(tester.pixel_values())
    if tester.is_descendant:
        assert isinstance(outputs, ImageClassifierOutput)
        assert outputs.logits.shape == (tester.batch_size, tester.num_labels)
        assert outputs.loss is None
    else:
        assert isinstance(outputs, BaseModelOutput)
        assert outputs.last_hidden_state.shape == (tester.batch_size, tester.seq_length, tester.hidden_size)
    assert outputs.hidden_states is None and outputs.attentions is None


def test_num_hidden_layers_is_the_depth_the_model_runs(tester):
    model = tester.build()
    assert model.config.num_hidden_layers == tester.num_hidden_layers == len(layers_in_order(model))
    inherited = tester.layout.count("L") if tester.is_descendant else tester.num_hidden_layers
    assert model.config.layer_indices == list(range(inherited))
    learngene = model.learngene if tester.is_descendant else model
    assert len(learngene.layers) == inherited
    with torch.no_grad():
        hidden = model(tester.pixel_values(batch=2), output_hidden_states=True).hidden_states
    assert len(hidden) == model.config.num_hidden_layers + 1


def test_hidden_states_follow_the_forward_order(tester):
    model = tester.build()
    x = tester.pixel_values(batch=3)
    with torch.no_grad():
        outputs = model(x, output_hidden_states=True)
        plain = model(x)
    hidden = outputs.hidden_states
    assert all(h.shape == (3, tester.seq_length, tester.hidden_size) for h in hidden)
    with torch.no_grad():
        for i, layer in enumerate(layers_in_order(model)):
            torch.testing.assert_close(layer(hidden[i]), hidden[i + 1], atol=1e-6, rtol=0)
    # Asking for hidden states runs the last layer in full; the outputs are the same.
    torch.testing.assert_close(main_output(tester, outputs), main_output(tester, plain), atol=1e-5, rtol=0)


def test_return_dict_false_gives_the_output_tuple(tester):
    model = tester.build(attn_implementation="eager")
    x = tester.pixel_values(batch=2)
    with torch.no_grad():
        as_dict = model(x, output_hidden_states=True, output_attentions=True)
        as_tuple = model(x, output_hidden_states=True, output_attentions=True, return_dict=False)
    expected = as_dict.to_tuple()
    assert len(as_tuple) == len(expected) == 3
    for got, want in zip(as_tuple, expected, strict=True):
        if isinstance(want, tuple):
            assert len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        else:
            assert torch.equal(got, want)


def test_batching_equivalence(tester):
    model = tester.build()
    x = tester.pixel_values(batch=4)
    with torch.no_grad():
        batched = main_output(tester, model(x))
        single = torch.cat([main_output(tester, model(x[i : i + 1])) for i in range(4)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def test_unknown_forward_argument_is_an_error(tester):
    model = tester.build()
    with pytest.raises(TypeError, match="attention_mask"):
        model(tester.pixel_values(batch=1), attention_mask=torch.ones(1, tester.seq_length))


# --- attentions and attention implementations -------------------------------------------------------------------


def test_attentions_under_eager(tester):
    model = tester.build(attn_implementation="eager")
    assert model.config._attn_implementation == "eager"
    x = tester.pixel_values()
    with torch.no_grad():
        outputs = model(x, output_attentions=True, output_hidden_states=True)
        plain = model(x)
    attentions = outputs.attentions
    assert isinstance(attentions, tuple) and len(attentions) == tester.num_hidden_layers
    for weights in attentions:
        assert weights.shape == (tester.batch_size, tester.num_attention_heads, tester.seq_length, tester.seq_length)
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-5, rtol=0)
        assert (weights >= 0).all()
    # One map per layer, in forward order: each is what that layer computes from its input.
    with torch.no_grad():
        for i, layer in enumerate(layers_in_order(model)):
            _, expected = layer(outputs.hidden_states[i], output_attentions=True)
            torch.testing.assert_close(attentions[i], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(main_output(tester, outputs), main_output(tester, plain), atol=1e-5, rtol=0)


def test_output_attentions_from_the_config(tester):
    model = tester.build(attn_implementation="eager", output_attentions=True)
    with torch.no_grad():
        outputs = model(tester.pixel_values(batch=2))
    assert outputs.attentions is not None and len(outputs.attentions) == tester.num_hidden_layers


def test_output_attentions_under_sdpa_is_a_clear_error(tester):
    model = tester.build()
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(ValueError, match=r"attn_implementation=\"eager\".*set_attn_implementation"):
        model(tester.pixel_values(batch=1), output_attentions=True)


def test_eager_matches_sdpa(tester):
    sdpa = tester.build()
    eager = tester.build(attn_implementation="eager")
    x = tester.pixel_values()
    with torch.no_grad():
        a = sdpa(x, output_hidden_states=True)
        b = eager(x, output_hidden_states=True)
        torch.testing.assert_close(main_output(tester, a), main_output(tester, b), atol=1e-5, rtol=0)
        for got, expected in zip(a.hidden_states, b.hidden_states, strict=True):
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
        # The CLS-only last layer of a descendant under eager too.
        torch.testing.assert_close(main_output(tester, sdpa(x)), main_output(tester, eager(x)), atol=1e-5, rtol=0)


def test_attn_implementation_really_selects_the_kernel(tester, tmp_path, monkeypatch):
    calls = []
    sdpa = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(1)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    x = tester.pixel_values(batch=1)
    tester.build().save_pretrained(tmp_path)

    def kernel_calls(model) -> int:
        calls.clear()
        with torch.no_grad():
            model(x)
        return len(calls)

    assert kernel_calls(tester.model_class.from_pretrained(tmp_path)) == tester.num_hidden_layers
    eager = tester.model_class.from_pretrained(tmp_path, attn_implementation="eager")
    assert eager.config._attn_implementation == "eager"
    assert kernel_calls(eager) == 0
    eager.set_attn_implementation("sdpa")
    assert kernel_calls(eager) == tester.num_hidden_layers
    assert kernel_calls(tester.build(attn_implementation="eager")) == 0


def test_attention_support_is_declared(tester):
    for flag in ("_supports_sdpa", "_supports_flash_attn", "_supports_flex_attn", "_supports_attention_backend"):
        assert getattr(tester.model_class, flag) is True, flag


def test_unavailable_attention_kernel_is_an_error(tester):
    pytest.importorskip("torch")
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises((ImportError, ValueError), match="(?i)flash"):
            tester.build(attn_implementation="flash_attention_2")
    else:  # pragma: no cover - a machine with flash-attn
        pytest.skip("flash-attn is installed here; tests/test_gpu.py exercises it")


# --- save / load --------------------------------------------------------------------------------------------------


def test_save_load_round_trip_is_exact(tester, tmp_path):
    model = tester.build()
    model.save_pretrained(tmp_path)
    with transformers_warnings() as warnings:
        reloaded, info = tester.model_class.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert not [w for w in warnings if "missing" in w.getMessage().lower()]
    assert type(reloaded) is tester.model_class
    ours, theirs = model.state_dict(), reloaded.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    without_path = lambda config: {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}  # noqa: E731
    assert without_path(reloaded.config) == without_path(model.config)
    assert reloaded.config.num_hidden_layers == tester.num_hidden_layers
    x = tester.pixel_values(batch=2)
    with torch.no_grad():
        assert torch.equal(main_output(tester, reloaded.eval()(x)), main_output(tester, model(x)))


def test_checkpoint_written_before_depth_counted_new_layers_loads(descendant_tester, tmp_path):
    # Configs written by hf_learngene 0.1 stored num_hidden_layers = len(layer_indices) beside the layout.
    model = descendant_tester.build()
    model.save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    stored = json.loads(config_file.read_text())
    stored["num_hidden_layers"] = len(stored["layer_indices"])
    config_file.write_text(json.dumps(stored))
    reloaded = DescendantForImageClassification.from_pretrained(tmp_path)
    assert reloaded.config.num_hidden_layers == len(descendant_tester.layout)
    for key, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], tensor), key
    stored["num_hidden_layers"] = 7
    config_file.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"`num_hidden_layers` \(7\) must be the model's depth"):
        DescendantForImageClassification.from_pretrained(tmp_path)


# --- problem types ------------------------------------------------------------------------------------------------

PROBLEMS = {
    "single_label_classification": (10, lambda g: torch.randint(0, 10, (13,), generator=g)),
    "multi_label_classification": (10, lambda g: torch.randint(0, 2, (13, 10), generator=g).float()),
    "regression": (1, lambda g: torch.randn(13, generator=g)),
}


def hand_loss(problem_type: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if problem_type == "single_label_classification":
        return -logits.log_softmax(-1).gather(1, labels[:, None]).mean()
    if problem_type == "multi_label_classification":
        p = logits.sigmoid()
        return -(labels * p.log() + (1 - labels) * (1 - p).log()).mean()
    return (logits.squeeze(-1) - labels).pow(2).mean()


@pytest.mark.parametrize("explicit", [False, True], ids=["inferred", "explicit"])
@pytest.mark.parametrize("problem_type", list(PROBLEMS))
def test_problem_types(descendant_tester, problem_type, explicit):
    num_labels, make_labels = PROBLEMS[problem_type]
    overrides = {"num_labels": num_labels}
    if explicit:
        overrides["problem_type"] = problem_type
    model = descendant_tester.build(**overrides)
    labels = make_labels(torch.Generator().manual_seed(3))
    outputs = model(pixel_values=descendant_tester.pixel_values(), labels=labels)
    assert outputs.logits.shape == (13, num_labels)
    assert outputs.loss.dtype == torch.float32 and torch.isfinite(outputs.loss)
    target = labels if problem_type == "single_label_classification" else labels.double()
    torch.testing.assert_close(outputs.loss, hand_loss(problem_type, outputs.logits.double(), target).float())
    assert model.config.problem_type == problem_type  # inferred on the first call, as ViTForImageClassification does
    outputs.loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_loss_is_float32_under_bf16(descendant_tester):
    model = descendant_tester.build().to(torch.bfloat16)
    labels = torch.arange(4) % descendant_tester.num_labels
    outputs = model(pixel_values=descendant_tester.pixel_values(batch=4), labels=labels)
    assert outputs.logits.dtype == torch.bfloat16 and outputs.loss.dtype == torch.float32
    torch.testing.assert_close(outputs.loss, F.cross_entropy(outputs.logits.float(), labels))


def test_trainer_loss_kwargs_reach_the_loss(descendant_tester):
    # The Trainer passes num_items_in_batch and then does not divide by the accumulation steps itself.
    model = descendant_tester.build()
    labels = torch.tensor([1, 2, 3, -100])
    x = descendant_tester.pixel_values(batch=4)
    outputs = model(pixel_values=x, labels=labels, num_items_in_batch=torch.tensor(6))
    expected = F.cross_entropy(outputs.logits, labels, reduction="sum", ignore_index=-100) / 6
    torch.testing.assert_close(outputs.loss, expected)


# --- training -----------------------------------------------------------------------------------------------------


def test_training_mode_and_all_parameters_learn(tester):
    model = tester.build().train()
    assert all(module.training for module in model.modules())
    x = tester.pixel_values(batch=4)
    torch.manual_seed(5)
    first = main_output(tester, model(x))
    second = main_output(tester, model(x))
    assert not torch.equal(first, second)  # dropout is active in training mode
    scalar_loss(tester, model, x).backward()
    assert not [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    model.eval()
    assert not any(module.training for module in model.modules())


def test_determinism(tester):
    a, b = tester.build(seed=4, randomise=False), tester.build(seed=4, randomise=False)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert not torch.equal(
        a.state_dict()["embeddings.cls_token" if not tester.is_descendant else "learngene.embeddings.cls_token"],
        tester.build(seed=5, randomise=False).state_dict()[
            "embeddings.cls_token" if not tester.is_descendant else "learngene.embeddings.cls_token"
        ],
    )
    x = tester.pixel_values(batch=3)
    with torch.no_grad():
        assert torch.equal(main_output(tester, a(x)), main_output(tester, a(x)))


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tester):
    x = tester.pixel_values(batch=4)
    results = []
    for checkpointing in (False, True):
        model = tester.build(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        runs = []
        for layer in layers_in_order(model):
            layer.attention.register_forward_hook(lambda *_, runs=runs: runs.append(1))
        loss = scalar_loss(tester, model, x)
        loss.backward()
        # With checkpointing each layer runs again during the backward pass.
        assert len(runs) == tester.num_hidden_layers * (2 if checkpointing else 1)
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b, atol=1e-6, rtol=0)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=0, msg=name)


# --- input embeddings ---------------------------------------------------------------------------------------------


def test_input_embeddings(tester):
    model = tester.build()
    embeddings = model.get_input_embeddings()
    learngene = model.learngene if tester.is_descendant else model
    assert isinstance(embeddings, LearngenePatchEmbeddings)
    assert embeddings is learngene.embeddings.patch_embeddings
    patches = embeddings(tester.pixel_values(batch=2))
    assert patches.shape == (2, tester.seq_length - 1, tester.hidden_size)
    # What PEFT does before gradient checkpointing a frozen model: the input embeddings' output needs a gradient.
    for param in model.parameters():
        param.requires_grad_(False)
    model.enable_input_require_grads()
    assert main_output(tester, model(tester.pixel_values(batch=2))).requires_grad


# --- configuration ------------------------------------------------------------------------------------------------


def test_partial_configs_are_accepted_and_checked_at_model_build(tmp_path):
    # ConfigTester-style: one field at a time, geometry inconsistent until every field is set.
    config = LearngeneConfig(hidden_size=37)
    assert json.loads(config.to_json_string())["hidden_size"] == 37
    config.save_pretrained(tmp_path)
    assert LearngeneConfig.from_pretrained(tmp_path).to_dict() == config.to_dict()
    for name, value in (("hidden_size", 0), ("num_attention_heads", 1), ("num_hidden_layers", 2)):
        setattr(config, name, value)
        assert getattr(config, name) == value
        assert getattr(LearngeneConfig(**{name: value}), name) == value
    assert LearngeneConfig(num_hidden_layers=2).layer_indices == [0, 1]
    assert len(LearngeneConfig(num_labels=5).id2label) == 5
    with pytest.raises(ValueError, match=r"`hidden_size` \(37\) must be divisible by `num_attention_heads` \(12\)"):
        LearngeneModel(LearngeneConfig(hidden_size=37, num_hidden_layers=1))
    with pytest.raises(ValueError, match="`hidden_size` must be a positive integer"):
        LearngeneModel(LearngeneConfig(hidden_size=0, num_attention_heads=1, num_hidden_layers=1))
    with pytest.raises(ValueError, match="`hidden_act`"):
        LearngeneModel(LearngeneConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=1, hidden_act="nope"))
    with pytest.raises(ValueError, match="`patch_size`.*larger than `image_size`"):
        LearngeneModel(LearngeneConfig(image_size=8, patch_size=16, num_hidden_layers=1))


def test_depth_arguments():
    assert LearngeneConfig(layer_indices=[3, 5]).num_hidden_layers == 2
    assert LearngeneConfig(layer_indices=[3, 5], layout="LRRL").num_hidden_layers == 4
    assert LearngeneConfig(layer_indices=[3, 5], num_new_layers=1).num_hidden_layers == 3
    assert LearngeneConfig(num_hidden_layers=4, layout="RLRL").layer_indices == [0, 1]
    assert LearngeneConfig(num_hidden_layers=4, num_new_layers=1).layer_indices == [0, 1, 2]
    with pytest.raises(ValueError, match=r"`num_hidden_layers` \(3\) must be the model's depth: len\(layout\) = 4"):
        LearngeneConfig(layer_indices=[3, 5], layout="LRRL", num_hidden_layers=3)
    with pytest.raises(ValueError, match=r"len\(layer_indices\) = 2 for a learngene"):
        LearngeneConfig(layer_indices=[3, 5], num_hidden_layers=3)
    with pytest.raises(ValueError, match="at least one 'L'"):
        LearngeneConfig(layout="RR")
    with pytest.raises(ValueError, match="exceed `num_new_layers`"):
        LearngeneConfig(num_hidden_layers=2, num_new_layers=2)
    # A layout set on a built config: the descendant built from it takes the depth from the layout.
    config = LearngeneConfig(layer_indices=[0, 1], num_labels=3, hidden_size=32, num_attention_heads=4)
    config.layout = "LRL"
    assert DescendantForImageClassification(config).config.num_hidden_layers == 3


def test_from_pretrained_keyword_arguments_are_validated(tmp_path):
    LearngeneModel(
        LearngeneConfig(hidden_size=32, num_attention_heads=4, intermediate_size=37, image_size=30, patch_size=2)
    ).save_pretrained(tmp_path)
    for kwargs, message in [
        ({"new_layer_init": "zeros"}, "new_layer_init"),
        ({"layer_indices": [0, 0]}, "duplicates"),
        ({"layout": "LXL"}, "contains 'X'"),
        ({"num_hidden_layers": 5}, "must be the model's depth"),
    ]:
        with pytest.raises(ValueError, match=message):
            LearngeneConfig.from_pretrained(tmp_path, **kwargs)
        with pytest.raises(ValueError, match=message):
            DescendantForImageClassification.from_pretrained(tmp_path, num_labels=2, **kwargs)
    with pytest.raises(ValueError, match="divisible"):
        LearngeneModel.from_pretrained(tmp_path, num_attention_heads=5)
    # Valid keyword arguments define the depth again and are kept.
    grown = DescendantForImageClassification.from_pretrained(tmp_path, num_labels=2, layout="L" * 12 + "RR")
    assert grown.config.num_hidden_layers == 14 and len(grown.descendant_layers()) == 14
    again = DescendantForImageClassification.from_pretrained(tmp_path, num_labels=2, num_new_layers=1)
    assert again.config.layout == "L" * 12 + "R" and again.config.num_hidden_layers == 13
    config, unused = LearngeneConfig.from_pretrained(tmp_path, layout="L" * 12, foo=1, return_unused_kwargs=True)
    assert config.layout == "L" * 12 and unused == {"foo": 1}
