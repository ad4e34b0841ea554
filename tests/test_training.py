"""Inheriting options, metrics, learning curves, the card and `train_descendant`, on real images (scikit-learn digits
upscaled to 16x16)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import Trainer, TrainerCallback, TrainingArguments

from hf_learngene import DescendantForImageClassification, LearngeneConfig, LearngeneModel
from hf_learngene.data import collate_fn, default_image_processor, load_digits_dataset, prepare_dataset
from hf_learngene.training import (
    FreezeInheritedCallback,
    LaunchError,
    LearngeneTrainer,
    ResumeError,
    SeededAugmentation,
    atomic_checkpoint,
    available_metrics,
    check_launch,
    check_sharding_device,
    compute_metrics,
    freeze_inherited,
    inherited_parameters,
    latest_checkpoint,
    load_learning_curves,
    load_metric,
    new_parameters,
    parameter_groups,
    plot_learning_curves,
    rotate_checkpoints,
    train_descendant,
)

# Patches of 8 px on digits upscaled to 16 px: 4 tokens, fast and learnable in a few epochs on one CPU thread.
GEOMETRY = dict(hidden_size=64, num_attention_heads=4, intermediate_size=128, image_size=16, patch_size=8)
QUIET = dict(disable_tqdm=True, logging_strategy="epoch", dataloader_pin_memory=False)


@pytest.fixture(scope="module")
def learngene_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("learngene")
    LearngeneModel(LearngeneConfig(layer_indices=[0, 1], **GEOMETRY)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset().train_test_split(test_size=0.2, stratify_by_column="label", seed=0)


def _descendant(learngene_dir, num_labels: int = 10, seed: int = 1, **kwargs) -> DescendantForImageClassification:
    torch.manual_seed(seed)
    return DescendantForImageClassification.from_pretrained(
        learngene_dir, num_labels=num_labels, num_new_layers=1, **kwargs
    )


def _snapshot(params) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in params}


def _loss_step(model, optimizer, batch) -> None:
    model(**batch).loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def _batch(digits, model, n: int = 16) -> dict[str, torch.Tensor]:
    ds = prepare_dataset(digits["train"], default_image_processor(model.config), num_labels=model.config.num_labels)
    return collate_fn([ds[i] for i in range(n)])


# ------------------------------------------------------------------------------------------ inherited vs new


def test_inherited_and_new_parameters_partition_the_model(learngene_dir):
    model = _descendant(learngene_dir)
    inherited = {n for n, _ in inherited_parameters(model)}
    new = {n for n, _ in new_parameters(model)}
    assert inherited.isdisjoint(new)
    assert inherited | new == {n for n, _ in model.named_parameters()}
    assert "learngene.embeddings.cls_token" in inherited and "learngene.layernorm.weight" in inherited
    assert "classifier.weight" in new and any(n.startswith("new_layers.0.") for n in new)


def test_parameter_groups_carry_their_learning_rates(learngene_dir):
    model = _descendant(learngene_dir)
    groups = parameter_groups(model, inherited_lr=1e-4, new_lr=1e-3, weight_decay=0.1)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"inherited", "inherited_no_decay", "new", "new_no_decay"}
    assert by_name["inherited"]["lr"] == by_name["inherited_no_decay"]["lr"] == 1e-4
    assert by_name["new"]["lr"] == by_name["new_no_decay"]["lr"] == 1e-3
    assert by_name["inherited"]["weight_decay"] == 0.1 and by_name["inherited_no_decay"]["weight_decay"] == 0.0
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))  # every parameter exactly once
    inherited_ids = {id(p) for _, p in inherited_parameters(model)}
    assert {id(p) for p in by_name["inherited"]["params"] + by_name["inherited_no_decay"]["params"]} == inherited_ids
    no_decay = {id(p) for p in by_name["new_no_decay"]["params"] + by_name["inherited_no_decay"]["params"]}
    assert id(model.classifier.bias) in no_decay and id(model.learngene.embeddings.position_embeddings) in no_decay
    assert id(model.classifier.weight) not in no_decay
    with pytest.raises(ValueError, match="inherited_lr"):
        parameter_groups(model, inherited_lr=-1.0, new_lr=1e-3)


def test_zero_inherited_lr_in_a_plain_loop_keeps_inherited_weights(learngene_dir, digits):
    model = _descendant(learngene_dir)
    optimizer = torch.optim.AdamW(parameter_groups(model, inherited_lr=0.0, new_lr=1e-2))
    before_inherited, before_new = _snapshot(inherited_parameters(model)), _snapshot(new_parameters(model))
    batch = _batch(digits, model)
    for _ in range(2):
        _loss_step(model, optimizer, batch)
    for name, p in inherited_parameters(model):
        assert torch.equal(p, before_inherited[name]), name
    assert any(not torch.equal(p, before_new[n]) for n, p in new_parameters(model))


def test_parameter_groups_in_the_trainer_keep_their_ratio(learngene_dir, digits, tmp_path):
    model = _descendant(learngene_dir)
    optimizer = torch.optim.AdamW(parameter_groups(model, inherited_lr=1e-4, new_lr=1e-3))
    train = prepare_dataset(digits["train"].select(range(64)), default_image_processor(model.config), num_labels=10)
    args = TrainingArguments(
        tmp_path, max_steps=3, per_device_train_batch_size=16, remove_unused_columns=False, report_to="none",
        lr_scheduler_type="cosine", warmup_steps=1, save_strategy="no", **QUIET,
    )  # fmt: skip
    trainer = Trainer(
        model=model, args=args, train_dataset=train, data_collator=collate_fn, optimizers=(optimizer, None)
    )
    trainer.train()
    lrs = {g["name"]: (g["initial_lr"], g["lr"]) for g in trainer.optimizer.param_groups}
    assert lrs["inherited"][0] == pytest.approx(1e-4) and lrs["new"][0] == pytest.approx(1e-3)
    # The scheduler scales both groups alike.
    assert lrs["new"][1] == pytest.approx(10 * lrs["inherited"][1])


def test_parameter_groups_through_optimizer_cls_and_kwargs(learngene_dir, tmp_path):
    model = _descendant(learngene_dir)
    groups = parameter_groups(model, inherited_lr=2e-4, new_lr=2e-3)
    args = TrainingArguments(tmp_path, report_to="none", use_cpu=True)
    trainer = Trainer(model=model, args=args, optimizer_cls_and_kwargs=(torch.optim.AdamW, {"params": groups}))
    optimizer = trainer.create_optimizer()
    assert {g["name"]: g["lr"] for g in optimizer.param_groups} == {
        "inherited": 2e-4,
        "inherited_no_decay": 2e-4,
        "new": 2e-3,
        "new_no_decay": 2e-3,
    }


def test_freeze_inherited_helper(learngene_dir, digits):
    model = _descendant(learngene_dir)
    assert freeze_inherited(model) == len(inherited_parameters(model))
    assert not any(p.requires_grad for _, p in inherited_parameters(model))
    assert all(p.requires_grad for _, p in new_parameters(model))
    optimizer = torch.optim.AdamW(parameter_groups(model, inherited_lr=1e-2, new_lr=1e-2, weight_decay=0.5))
    before = _snapshot(inherited_parameters(model))
    _loss_step(model, optimizer, _batch(digits, model))
    assert all(torch.equal(p, before[n]) for n, p in inherited_parameters(model))  # weight decay did not touch them
    assert freeze_inherited(model, frozen=False) == len(before)
    _loss_step(model, optimizer, _batch(digits, model))
    assert any(not torch.equal(p, before[n]) for n, p in inherited_parameters(model))


class _Snapshots(TrainerCallback):
    def __init__(self):
        self.inherited: dict[int, dict[str, torch.Tensor]] = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.inherited[state.global_step] = _snapshot(inherited_parameters(model))


def test_freeze_callback_freezes_the_first_steps_then_trains(learngene_dir, digits, tmp_path):
    model = _descendant(learngene_dir)
    start = _snapshot(inherited_parameters(model))
    start_new = _snapshot(new_parameters(model))
    train = prepare_dataset(digits["train"].select(range(96)), default_image_processor(model.config), num_labels=10)
    args = TrainingArguments(
        tmp_path, max_steps=5, per_device_train_batch_size=16, learning_rate=1e-2, weight_decay=0.1,
        remove_unused_columns=False, report_to="none", save_strategy="no", **QUIET,
    )  # fmt: skip
    snapshots = _Snapshots()
    trainer = Trainer(
        model=model, args=args, train_dataset=train, data_collator=collate_fn,
        callbacks=[FreezeInheritedCallback(num_steps=3), snapshots],
    )  # fmt: skip
    trainer.train()
    for step in (1, 2, 3):
        assert all(torch.equal(snapshots.inherited[step][n], start[n]) for n in start), f"changed at step {step}"
    assert any(not torch.equal(snapshots.inherited[4][n], start[n]) for n in start)
    assert any(not torch.equal(p, start_new[n]) for n, p in new_parameters(model))
    with pytest.raises(ValueError, match="num_steps"):
        FreezeInheritedCallback(num_steps=-1)


def test_new_layer_init_choices_survive_save_and_load(learngene_dir, tmp_path):
    default = _descendant(learngene_dir)
    assert default.config.new_layer_init == "trunc_normal"
    weight = default.new_layers[0].attention.q_proj.weight
    # transformers' ViT scheme: truncated normal with std = initializer_range (0.02).
    assert weight.std().item() == pytest.approx(default.config.initializer_range, rel=0.15)
    mimetic = _descendant(learngene_dir, new_layer_init="mimetic")
    attention = mimetic.new_layers[0].attention
    head = attention.head_dim
    qk = attention.q_proj.weight[:head].T @ attention.k_proj.weight[:head]
    default_attention = default.new_layers[0].attention
    default_qk = default_attention.q_proj.weight[:head].T @ default_attention.k_proj.weight[:head]
    assert torch.diagonal(qk).mean() > 10 * torch.diagonal(default_qk).abs().mean()
    mimetic.save_pretrained(tmp_path)
    reloaded = DescendantForImageClassification.from_pretrained(tmp_path)
    assert reloaded.config.new_layer_init == "mimetic"
    for name, tensor in mimetic.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name  # loading does not re-initialise


# ------------------------------------------------------------------------------------------ metrics


def test_shipped_metrics_match_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    assert {"accuracy", "f1"} <= set(available_metrics())
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=200)
    logits = rng.normal(size=(200, 5))
    logits[np.arange(200), labels] += rng.normal(1.0, 1.0, size=200)  # better than chance, not perfect
    predictions = logits.argmax(-1)
    metrics = compute_metrics((logits, labels))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, predictions))
    assert metrics["f1"] == pytest.approx(f1_score(labels, predictions, average="macro"))
    weighted = load_metric("f1").compute(predictions=predictions, references=labels, average="weighted")["f1"]
    assert weighted == pytest.approx(f1_score(labels, predictions, average="weighted"))


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match=r"Unknown metric 'bleu'.*accuracy"):
        load_metric("bleu")


# ------------------------------------------------------------------------------------------ train_descendant


@pytest.mark.slow
def test_train_descendant_learns_digits_and_writes_card(learngene_dir, digits, tmp_path):
    model = _descendant(learngene_dir)
    out = tmp_path / "run"
    result = train_descendant(
        model, digits["train"], digits["test"], output_dir=out, num_train_epochs=3, learning_rate=3e-3,
        horizontal_flip=False, dataset_name="sklearn-digits", **QUIET,
    )  # fmt: skip
    # 10 classes: chance is 0.1.
    assert result.metrics["eval_accuracy"] > 0.5, result.metrics
    assert 0 < result.metrics["eval_f1"] <= 1
    assert [e["epoch"] for e in result.learning_curves] == [1, 2, 3]
    for entry in result.learning_curves:
        assert all(entry[key] is not None for key in ("train_loss", "eval_loss", "eval_accuracy", "eval_f1"))
    assert result.learning_curves[-1]["train_loss"] < result.learning_curves[0]["train_loss"]
    assert json.loads((out / "learning_curves.json").read_text()) == result.learning_curves
    best = max(e["eval_accuracy"] for e in result.learning_curves)
    assert result.metrics["eval_accuracy"] == pytest.approx(best)  # the best checkpoint is the one kept

    # Precision, recall and the confusion matrix of the model kept, in the metrics, the report file and the card.
    assert 0 < result.metrics["eval_precision"] <= 1 and 0 < result.metrics["eval_recall"] <= 1
    report = json.loads((out / "classification_report.json").read_text())
    assert report == result.report and sum(map(sum, report["confusion_matrix"])) == 360
    assert report["accuracy"] == pytest.approx(result.metrics["eval_accuracy"])
    card = (out / "README.md").read_text()
    assert "library_name: hf_learngene" in card and "## Training" in card
    assert "| eval_precision |" in card and "| eval_recall |" in card
    assert "![Learning curves](learning_curves.png)" in card and (out / "learning_curves.png").is_file()
    assert "`sklearn-digits` (1,437 training, 360 evaluation images)" in card
    assert f"{result.metrics['eval_accuracy']:.4f}" in card
    assert model.config.id2label[3] == "3"
    reloaded = DescendantForImageClassification.from_pretrained(out)
    weights = load_file(out / "model.safetensors")
    assert torch.equal(reloaded.classifier.weight, weights["classifier.weight"])
    assert reloaded.image_processor is not None


@pytest.mark.slow
def test_resume_from_checkpoint_gives_the_same_weights(learngene_dir, digits, tmp_path):
    train = digits["train"].select(range(192))
    common = dict(
        num_train_epochs=2, per_device_train_batch_size=32, learning_rate=3e-3, horizontal_flip=False, **QUIET
    )
    train_descendant(_descendant(learngene_dir), train, output_dir=tmp_path / "full", **common)
    full = load_file(tmp_path / "full" / "model.safetensors")
    checkpoint = tmp_path / "full" / "checkpoint-6"  # end of epoch 1 (6 steps of 32)
    assert checkpoint.is_dir()
    at_checkpoint = load_file(checkpoint / "model.safetensors")
    assert not torch.equal(at_checkpoint["classifier.weight"], full["classifier.weight"])  # epoch 2 did train
    # A fresh model (other new-layer weights) resumed from the epoch-1 checkpoint ends where the uninterrupted run did.
    resumed_model = _descendant(learngene_dir, seed=123)
    assert not torch.equal(resumed_model.classifier.weight, _descendant(learngene_dir).classifier.weight)
    train_descendant(
        resumed_model, train, output_dir=tmp_path / "resumed", resume_from_checkpoint=str(checkpoint), **common
    )
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    assert full.keys() == resumed.keys()
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], rtol=0, atol=0, msg=name)


def test_train_descendant_freezes_throughout(learngene_dir, digits, tmp_path):
    model = _descendant(learngene_dir)
    before = _snapshot(inherited_parameters(model))
    result = train_descendant(
        model, digits["train"].select(range(64)), output_dir=tmp_path, num_train_epochs=1, freeze_inherited_steps=None,
        save_strategy="no", **QUIET,
    )  # fmt: skip
    assert all(torch.equal(p, before[n]) for n, p in inherited_parameters(model))
    # AdamW over parameter_groups, built by the Trainer itself (FSDP refuses a ready-made optimizer).
    groups = {g["name"]: g for g in result.trainer.optimizer.param_groups}
    assert set(groups) == {"inherited", "inherited_no_decay", "new", "new_no_decay"}
    assert groups["new"]["weight_decay"] == 0.05 and groups["new_no_decay"]["weight_decay"] == 0.0
    assert model.training_summary["setup"]["Inherited layers frozen"] == "throughout"
    assert "| Inherited layers frozen | throughout |" in (tmp_path / "README.md").read_text()
    assert "eval_loss" not in result.learning_curves[0]  # no eval set


# ------------------------------------------------------------------------------------------ bad input


def test_labels_outside_num_labels_are_refused(learngene_dir, digits, tmp_path):
    model = _descendant(learngene_dir, num_labels=3)
    with pytest.raises(ValueError, match="10 classes but the model has num_labels=3"):
        train_descendant(model, digits["train"], output_dir=tmp_path)


def test_empty_split_is_refused(learngene_dir, digits, tmp_path):
    model = _descendant(learngene_dir)
    with pytest.raises(ValueError, match="empty"):
        train_descendant(model, digits["train"].select([]), output_dir=tmp_path)
    with pytest.raises(ValueError, match="eval_dataset. is empty"):
        train_descendant(model, digits["train"], digits["test"].select([]), output_dir=tmp_path)


def test_dataset_dict_instead_of_a_split_is_refused(learngene_dir, digits, tmp_path):
    with pytest.raises(TypeError, match=r"DatasetDict with splits \['train', 'test'\]"):
        train_descendant(_descendant(learngene_dir), digits, output_dir=tmp_path)


def test_push_without_repo_id_is_refused(learngene_dir, digits, tmp_path):
    with pytest.raises(ValueError, match="hub_model_id"):
        train_descendant(_descendant(learngene_dir), digits["train"], output_dir=tmp_path, push_to_hub=True)


def test_wrapped_parameter_names_still_split_inherited_from_new(learngene_dir):
    from torch.nn.parallel import DistributedDataParallel  # noqa: F401  (the "module." prefix it adds)

    model = _descendant(learngene_dir)
    wrapper = torch.nn.Module()
    wrapper.module = model
    wrapper.learngene = model.learngene  # what parameter_groups checks for
    named = [
        (f"module.{n}".replace("layers.0.", "layers.0._fsdp_wrapped_module."), p) for n, p in model.named_parameters()
    ]
    wrapper.named_parameters = lambda: iter(named)
    assert {id(p) for _, p in inherited_parameters(wrapper)} == {id(p) for _, p in inherited_parameters(model)}


def test_not_a_descendant_is_refused(tmp_path):
    with pytest.raises(TypeError, match="DescendantForImageClassification"):
        parameter_groups(torch.nn.Linear(2, 2), inherited_lr=1e-3, new_lr=1e-3)


def test_learngene_trainer_writes_our_card_where_the_trainer_writes_its_own(learngene_dir, tmp_path):
    model = _descendant(learngene_dir)
    model.training_summary = {"dataset": "marker-dataset", "num_train": 3}
    for cls, folder in ((Trainer, "plain"), (LearngeneTrainer, "ours")):
        args = TrainingArguments(tmp_path / folder, report_to="none")
        trainer = cls(model=model, args=args)
        trainer.save_model()
        trainer.create_model_card(tags=["digits"], dataset="sklearn-digits")
    plain = (tmp_path / "plain" / "README.md").read_text()
    ours = (tmp_path / "ours" / "README.md").read_text()
    assert "library_name: hf_learngene" not in plain  # the generic Trainer card replaced ours
    assert "library_name: hf_learngene" in ours and "Trained on `marker-dataset` (3 training images)" in ours
    assert "- digits" in ours and "- sklearn-digits" in ours


# ------------------------------------------------------------------------------------------ resuming exactly

RESUMABLE = dict(
    num_train_epochs=2, per_device_train_batch_size=32, learning_rate=3e-3, horizontal_flip=True,  # augmentation on
    save_strategy="steps", save_steps=2, save_total_limit=None, load_best_model_at_end=False, **QUIET,
)  # fmt: skip


@pytest.fixture(scope="module")
def resumable_run(learngene_dir, digits, tmp_path_factory):
    """An uninterrupted run with augmentation, 5 steps per epoch and a checkpoint every 2 steps."""
    out = tmp_path_factory.mktemp("uninterrupted")
    result = train_descendant(
        _descendant(learngene_dir), digits["train"].select(range(160)), digits["test"].select(range(64)),
        output_dir=out, **RESUMABLE,
    )  # fmt: skip
    return out, result


@pytest.mark.slow
def test_resume_mid_epoch_with_augmentation_is_exact(resumable_run, learngene_dir, digits, tmp_path):
    full_dir, full = resumable_run
    # The run as a kill would have left it: checkpoints up to step 8 (epoch 2, batch 3 of 5), then checkpoint-10
    # half written (no trainer_state.json), no final model.
    shutil.copytree(full_dir, tmp_path, dirs_exist_ok=True)
    for name in ("model.safetensors", "learning_curves.json", "trainer_state.json"):
        (tmp_path / name).unlink(missing_ok=True)
    (tmp_path / "checkpoint-10" / "trainer_state.json").unlink()
    with pytest.warns(UserWarning, match=r"Skipping incomplete checkpoint\(s\) \['checkpoint-10'\]"):
        resumed = train_descendant(
            _descendant(learngene_dir, seed=123), digits["train"].select(range(160)),
            digits["test"].select(range(64)), output_dir=tmp_path, resume_from_checkpoint=True, **RESUMABLE,
        )  # fmt: skip
    assert resumed.trainer.state.global_step == 10
    expected, got = load_file(full_dir / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    # The curves hold every epoch, the first as logged before the interruption, the second's evaluation exact.
    assert [row["epoch"] for row in resumed.learning_curves] == [1, 2]
    assert resumed.learning_curves[0] == full.learning_curves[0]
    second, full_second = resumed.learning_curves[1], full.learning_curves[1]
    assert {k: v for k, v in second.items() if k.startswith("eval_") and k != "eval_runtime"} == {
        k: v for k, v in full_second.items() if k.startswith("eval_") and k != "eval_runtime"
    }
    assert json.loads((tmp_path / "learning_curves.json").read_text()) == resumed.learning_curves
    assert [row["epoch"] for row in load_learning_curves(tmp_path)] == [1, 2]


def test_an_unrestorable_random_state_stops_the_resume(resumable_run, learngene_dir, digits, tmp_path):
    checkpoint = tmp_path / "checkpoint-4"
    shutil.copytree(resumable_run[0] / "checkpoint-4", checkpoint)
    train = digits["train"].select(range(160))
    (checkpoint / "rng_state.pth").unlink()
    with pytest.raises(ResumeError, match="random state rng_state.pth is missing"):
        train_descendant(_descendant(learngene_dir), train, output_dir=tmp_path, resume_from_checkpoint=str(checkpoint))
    torch.save({"python": ResumeError("not a tensor")}, checkpoint / "rng_state.pth")  # refused by weights_only
    with pytest.raises(ResumeError, match="random state rng_state.pth was refused"):
        train_descendant(_descendant(learngene_dir), train, output_dir=tmp_path, resume_from_checkpoint=str(checkpoint))


def test_plot_learning_curves_of_a_run_folder(resumable_run, tmp_path):
    run_dir, result = resumable_run
    assert load_learning_curves(run_dir) == result.learning_curves
    path = plot_learning_curves(run_dir, tmp_path / "curves.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 300


class _Marker:
    """A `compute_metrics` whose `marker` falls with every call: the first evaluation is the best."""

    def __init__(self):
        self.calls = 0

    def __call__(self, eval_pred) -> dict[str, float]:
        self.calls += 1
        return {"marker": -float(self.calls), "accuracy": float((eval_pred[0].argmax(-1) == eval_pred[1]).mean())}


@pytest.mark.slow
def test_own_metrics_pick_the_best_checkpoint_without_rewriting_the_last_epoch(learngene_dir, digits, tmp_path):
    marker = _Marker()
    result = train_descendant(
        _descendant(learngene_dir), digits["train"].select(range(96)), digits["test"].select(range(64)),
        output_dir=tmp_path, num_train_epochs=3, compute_metrics=marker, metric_for_best_model="marker",
        greater_is_better=True, lr_scheduler_type="linear", **QUIET,
    )  # fmt: skip
    args = result.trainer.args
    assert args.metric_for_best_model == "marker" and args.lr_scheduler_type == "linear"  # any TrainingArguments field
    assert marker.calls == 4  # three epochs, then the final evaluation of the model kept
    curves = result.learning_curves
    assert [row["epoch"] for row in curves] == [1, 2, 3] and [row["eval_marker"] for row in curves] == [-1, -2, -3]
    # The model kept is epoch 1's: the final evaluation scores it, and leaves epoch 3's logged row alone.
    assert result.trainer.state.best_global_step == 3
    assert result.metrics["eval_loss"] == curves[0]["eval_loss"] != curves[2]["eval_loss"]
    logged = [e for e in result.trainer.state.log_history if "eval_loss" in e and e["epoch"] == 3.0]
    assert curves[2]["eval_loss"] == logged[0]["eval_loss"]
    assert json.loads((tmp_path / "learning_curves.json").read_text()) == curves


# ------------------------------------------------------------------------------------------ checkpoints and launches


def test_atomic_checkpoints_latest_and_rotation(tmp_path):
    for step in (1, 2, 3):
        with atomic_checkpoint(tmp_path, step, info={"epoch": step}) as scratch:
            (tmp_path / "partial-view").write_text(str(sorted(p.name for p in tmp_path.iterdir())))
            (Path(scratch) / "weights").write_text(str(step))
    assert "'checkpoint-3'" not in (tmp_path / "partial-view").read_text()  # invisible while being written
    (tmp_path / "checkpoint-4").mkdir()  # a folder a killed Trainer left half written
    (tmp_path / ".tmp-checkpoint-5").mkdir()  # an atomic write killed midway
    with pytest.warns(UserWarning, match="checkpoint-4"):
        assert latest_checkpoint(tmp_path) == str(tmp_path / "checkpoint-3")
    rotate_checkpoints(tmp_path, limit=2)
    assert sorted(p.name for p in tmp_path.iterdir() if "checkpoint" in p.name) == [
        "checkpoint-2", "checkpoint-3", "checkpoint-4",
    ]  # fmt: skip


def test_seeded_augmentation_does_not_depend_on_the_reading_order(digits):
    processor = default_image_processor(LearngeneConfig(layer_indices=[0], **GEOMETRY))
    prepared = prepare_dataset(digits["train"].select(range(8)), processor, train=True, num_labels=10)
    seeded = SeededAugmentation(prepared, seed=3)
    forward = [seeded[i]["pixel_values"] for i in range(8)]
    torch.rand(5)  # the global generator moves on: it must not matter
    backward = [seeded[i]["pixel_values"] for i in reversed(range(8))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forward, backward, strict=True))
    seeded.set_epoch(1)
    assert not torch.equal(seeded[0]["pixel_values"], forward[0])  # a new epoch, a new augmentation


def test_launch_checks(monkeypatch):
    for name in ("WORLD_SIZE", "MASTER_PORT", "ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"):
        monkeypatch.delenv(name, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_launch(1, "NO")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(LaunchError, match="started 2 processes but they train as 1"):
        check_launch(1, "NO")
    check_launch(2, "MULTI_CPU")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(LaunchError, match="asks for FSDP but the run is MULTI_CPU"):
        check_launch(2, "MULTI_CPU")
    with pytest.raises(LaunchError, match="asks for FSDP but the run is on the CPU"):
        check_sharding_device("cpu")
    check_launch(2, "FSDP")
    check_sharding_device("cuda")
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("MASTER_PORT", "29500")  # what accelerate's simple launcher sets for processes it never starts
    with pytest.warns(UserWarning, match="started only this one"):
        check_launch(1, "NO")


def test_a_one_output_head_is_only_for_regression(learngene_dir, digits, tmp_path):
    model = _descendant(learngene_dir, num_labels=1)
    with pytest.raises(ValueError, match="problem_type='regression'"):
        train_descendant(model, digits["train"], output_dir=tmp_path)
