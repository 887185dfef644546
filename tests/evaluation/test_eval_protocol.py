"""The evaluation protocol: image selection, target offsets, per-call seeds and the records of attack_batch."""

import dataclasses
import types

import numpy as np
import pytest
import torch
from torch import nn

from gse_explain.attacks import ATTACKS, AttackResult, AttackSpec
from gse_explain.data import load_dataset
from gse_explain.evaluation import protocol
from gse_explain.evaluation.metrics import METRICS, example_metrics
from gse_explain.evaluation.protocol import (
    CIFAR10_TARGET_OFFSETS,
    IMAGENET_TARGET_OFFSETS,
    Selection,
    attack_batch,
    call_seed,
    default_target_offsets,
    load_images,
    predict,
    select_correct,
)

TINY = {"iterations": 20, "search_steps": 2}
RECORD_COLUMNS = ["image", "label", "target", "offset", "success", "time", "model_passes", *METRICS]


@pytest.fixture(scope="module")
def first_images(cifar_dataset):
    """The first 64 test images and labels with the model's predictions."""
    images = load_images(cifar_dataset, range(64))
    labels = torch.tensor([cifar_dataset[i][1] for i in range(64)])
    return images, labels


# -- selection -------------------------------------------------------------------------------------------------
def test_select_correct_first_n_in_order(resnet20, cifar_dataset, first_images):
    images, labels = first_images
    with torch.no_grad():
        predicted = resnet20.eval()(images).argmax(1)
    assert (predict(resnet20, images, batch_size=7) == predicted).all()
    correct = torch.nonzero(predicted == labels).flatten().tolist()
    assert len(correct) < 64  # the model makes mistakes among the first 64, so skipping is exercised
    wrong_before = next(i for i in range(64) if i not in correct)
    assert wrong_before < correct[9]

    selection = select_correct(resnet20, cifar_dataset, 10, batch_size=4)
    assert selection.positions.tolist() == correct[:10]
    assert selection.examples.tolist() == correct[:10]  # the npz index is 0..499
    assert selection.labels.tolist() == labels[correct[:10]].tolist()
    assert selection.positions.dtype == np.int64 and selection.labels.dtype == np.int64
    # scanning stops after the batch of 4 in which the 10th correct image is found
    scanned = (correct[9] // 4 + 1) * 4
    assert selection.scanned == scanned
    assert selection.correct == sum(1 for c in correct if c < scanned)
    assert Selection.from_json(selection.to_json()).to_json() == selection.to_json()


def test_select_correct_maps_positions_to_dataset_index(resnet20, cifar_dataset, first_images, tmp_path):
    images, labels = first_images
    with torch.no_grad():
        predicted = resnet20.eval()(images).argmax(1)
    correct = torch.nonzero(predicted == labels).flatten().tolist()
    # the same 40 images reversed, with their own example indices
    x = (images[:40].flip(0).permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    path = tmp_path / "reversed.npz"
    np.savez(path, x=x, y=labels[:40].flip(0).numpy().astype(np.uint8), index=np.arange(1000, 1040)[::-1] * 1)
    dataset = load_dataset("cifar10_npz", root=path)
    selection = select_correct(resnet20, dataset, None, batch_size=16)
    expected_positions = sorted(39 - c for c in correct if c < 40)
    assert selection.positions.tolist() == expected_positions
    assert selection.examples.tolist() == [1039 - p for p in expected_positions]
    assert selection.scanned == 40 and selection.correct == len(expected_positions)


def test_select_correct_unknown_labels_take_predictions():
    class Unlabelled(torch.utils.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return torch.full((1, 2, 2), i / 4), -1

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0] * 4, [-1.0] * 4, [0.0] * 4]))
        model[1].bias.copy_(torch.tensor([-2.0, 1.0, 0.5]))
    selection = select_correct(model, Unlabelled(), None, batch_size=2)
    # logits: class 0: 4v - 2, class 1: 1 - 4v, class 2: 0.5 for v = i / 4
    assert selection.positions.tolist() == [0, 1, 2, 3, 4]
    assert selection.labels.tolist() == [1, 2, 2, 0, 0]
    assert selection.examples.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="num_images"):
        select_correct(model, Unlabelled(), 0)


# -- targets ---------------------------------------------------------------------------------------------------
def test_default_target_offsets():
    assert default_target_offsets(10) == tuple(range(1, 10)) == CIFAR10_TARGET_OFFSETS
    assert default_target_offsets(1000) == (857, 477, 974, 591, 150, 547, 261, 86, 151, 610) == IMAGENET_TARGET_OFFSETS
    assert default_target_offsets(2) == (1,)
    for bad in (1, 11, 100):
        with pytest.raises(ValueError, match="offsets"):
            default_target_offsets(bad)


def test_call_seed_is_reproducible_and_distinct():
    seeds = {(s, b, o): call_seed(s, b, o) for s in (0, 1) for b in range(4) for o in range(10)}
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= v < 2**32 and isinstance(v, int) for v in seeds.values())
    assert call_seed(0, 3, 2) == call_seed(0, 3, 2)
    assert call_seed(0, 1, 0) != call_seed(0, 0, 1)


# -- attack_batch with the real model ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_correct(resnet20, cifar_dataset):
    selection = select_correct(resnet20, cifar_dataset, 2)
    return load_images(cifar_dataset, selection.positions), torch.as_tensor(selection.labels)


def test_explicit_targets_equal_to_labels_are_rejected(resnet20, two_correct):
    images, labels = two_correct
    targets = (labels + 1) % 10
    targets[1] = labels[1]
    with pytest.raises(ValueError, match="target equals the true label for image 1"):
        attack_batch(resnet20, images, labels, targeted=True, targets=targets, options=TINY)
    with pytest.raises(ValueError, match="shape"):
        attack_batch(resnet20, images, labels, targeted=True, targets=targets[:1], options=TINY)
    with pytest.raises(ValueError, match="targeted=True"):
        attack_batch(resnet20, images, labels, offsets=[1], options=TINY)
    with pytest.raises(ValueError, match="multiples of 10"):
        attack_batch(resnet20, images, labels, targeted=True, offsets=[1, 10], options=TINY)
    with pytest.raises(ValueError, match="unknown attack"):
        attack_batch(resnet20, images, labels, attack="nope")


def _check_records(records, adversarials, images, rows):
    assert list(records) == RECORD_COLUMNS
    assert all(len(v) == rows for v in records.values())
    assert adversarials.shape == (rows, *images.shape[1:])
    assert records["success"].dtype == bool
    for key in ("image", "label", "target", "offset", "acp", "anc", "d20"):
        assert records[key].dtype == np.int64, key
    assert records["l2"].dtype == np.float64
    assert (records["time"] > 0).all() and (records["model_passes"] > 0).all()
    # the metrics are those of the returned adversarials against their clean images
    recomputed = example_metrics(images[records["image"]], adversarials, (0.0, 1.0))
    for key, values in recomputed.items():
        np.testing.assert_array_equal(records[key], values)
    assert adversarials.min() >= 0 and adversarials.max() <= 1


def test_targeted_offsets_rows_image_by_offset(resnet20, two_correct):
    images, labels = two_correct
    before = images.clone()
    offsets = [1, 3, 9]
    records, adversarials = attack_batch(resnet20, images, labels, targeted=True, offsets=offsets,
                                         preset="cifar10", options=TINY, seed=5, batch_index=2)
    _check_records(records, adversarials, images, 6)
    assert torch.equal(images, before)
    assert records["image"].tolist() == [0, 1, 0, 1, 0, 1]
    assert records["offset"].tolist() == [1, 1, 3, 3, 9, 9]
    assert records["label"].tolist() == labels.tolist() * 3
    assert records["target"].tolist() == [(int(labels[i]) + o) % 10 for o in offsets for i in range(2)]
    # success means the model predicts the target on the stored adversarial
    assert records["success"].tolist() == (predict(resnet20, adversarials) == torch.as_tensor(records["target"])).tolist()
    # time and model passes are amortised per call: equal within a call
    for call in range(3):
        assert len(set(records["time"][2 * call : 2 * call + 2])) == 1
        assert len(set(records["model_passes"][2 * call : 2 * call + 2])) == 1
    # GSE is deterministic: the same call gives the same result
    again, adv_again = attack_batch(resnet20, images, labels, targeted=True, offsets=[3], preset="cifar10", options=TINY)
    assert torch.equal(adv_again, adversarials[2:4])
    assert again["success"].tolist() == records["success"][2:4].tolist()


def test_targeted_default_offsets_and_explicit_targets(resnet20, two_correct):
    images, labels = two_correct
    records, adversarials = attack_batch(resnet20, images, labels, targeted=True, options={"iterations": 5, "search_steps": 1})
    _check_records(records, adversarials, images, 18)
    assert records["offset"].tolist() == [o for o in range(1, 10) for _ in range(2)]
    assert sorted(records["target"][records["image"] == 0].tolist()) == sorted(set(range(10)) - {int(labels[0])})
    targets = (labels + 4) % 10
    records, adversarials = attack_batch(resnet20, images, labels, targeted=True, targets=targets, options=TINY)
    _check_records(records, adversarials, images, 2)
    assert records["target"].tolist() == targets.tolist() and records["offset"].tolist() == [-1, -1]


def test_untargeted_records(resnet20, two_correct):
    images, labels = two_correct
    records, adversarials = attack_batch(resnet20, images, labels, preset="cifar10", options=TINY)
    _check_records(records, adversarials, images, 2)
    assert records["target"].tolist() == [-1, -1] and records["offset"].tolist() == [-1, -1]
    assert records["label"].tolist() == labels.tolist()
    assert records["success"].tolist() == (predict(resnet20, adversarials) != labels).tolist()
    # a failed example is returned unchanged, so its metrics are all zero
    failed = ~records["success"]
    assert (records["acp"][failed] == 0).all()


# -- attack_batch bookkeeping with a fake attack ----------------------------------------------------------------
@pytest.fixture
def fake_attack(monkeypatch):
    calls = []

    def attack(model, images, labels, *, targeted, bounds, preset, generator, progress, **options):
        calls.append({"labels": labels.clone(), "seed": generator.initial_seed(), "targeted": targeted,
                      "preset": preset, "options": options, "bounds": bounds})
        adversarials = images.clone()
        adversarials[0, :, 0, len(calls)] = 1.0  # image 0: one changed pixel, moving with the call
        adversarials[1, 0, 5:7, 5:7] = 0.0  # image 1: a 2 × 2 square
        success = torch.tensor([True, False])
        return AttackResult(adversarials, success, forward_passes=4, gradient_passes=6)

    @dataclasses.dataclass(frozen=True)
    class FakeConfig:
        k: int = 0

    spec = AttackSpec("fake", attack, FakeConfig, {"p": {False: {}, True: {}}}, "test double", "Fake", "#123456")
    monkeypatch.setitem(ATTACKS, "fake", spec)
    now = [0.0]

    def perf_counter():  # every attack call "takes" 3 s
        now[0] += 3.0
        return now[0]

    monkeypatch.setattr(protocol, "time", types.SimpleNamespace(perf_counter=perf_counter))
    return calls


def test_call_seeds_and_amortised_bookkeeping(fake_attack):
    images = torch.full((2, 3, 8, 8), 0.5)
    labels = torch.tensor([2, 7])
    records, adversarials = attack_batch(nn.Identity(), images, labels, attack="fake", targeted=True, offsets=[1, 2, 5],
                                         num_classes=10, seed=11, batch_index=4, preset="p", options={"k": 1})
    assert [c["seed"] for c in fake_attack] == [call_seed(11, 4, i) for i in range(3)]
    assert len({c["seed"] for c in fake_attack}) == 3
    assert [c["labels"].tolist() for c in fake_attack] == [[3, 8], [4, 9], [7, 2]]
    assert all(c["targeted"] and c["preset"] == "p" and c["options"] == {"k": 1} and c["bounds"] == (0.0, 1.0)
               for c in fake_attack)
    assert records["time"].tolist() == [1.5] * 6  # 3 s per call over 2 images
    assert records["model_passes"].tolist() == [5.0] * 6  # 10 passes per call over 2 images
    assert records["success"].tolist() == [True, False] * 3
    assert records["acp"].tolist() == [1, 4] * 3
    assert records["anc"].tolist() == [1, 1] * 3
    assert records["d20"].tolist() == [1, 1] * 3
    assert records["l2"] == pytest.approx([2 * np.sqrt(3 * 0.25), 2 * np.sqrt(4 * 0.25)] * 3)
    # rows are in call order: the adversarial of call i has its pixel at column i + 1
    for call in range(3):
        assert adversarials[2 * call, 0, 0, call + 1] == 1.0

    fake_attack.clear()
    attack_batch(nn.Identity(), images, labels, attack="fake", seed=11, batch_index=5)
    assert [c["seed"] for c in fake_attack] == [call_seed(11, 5, 0)]
    assert not fake_attack[0]["targeted"] and fake_attack[0]["labels"].tolist() == [2, 7]
