"""The networks: SFNet's layout against the architecture table counted by hand, MnistNet's
shapes, and memory-format independence."""

import pytest
import torch
from torch import nn

from sphereviz.models import MnistNet, SFNet, build_model

UNITS = {4: (0, 0, 0, 0), 10: (0, 1, 2, 0), 20: (1, 2, 4, 1), 36: (2, 4, 8, 2), 64: (3, 8, 16, 3)}


def hand_counted_sfnet_parameters(units_per_stage, embedding_dim=512, channels=(64, 128, 256, 512)):
    """SphereFace Table 2, counted by hand: conv 3·3·c_in·c_out + c_out (bias),
    PReLU one slope per channel, FC c₄·7·6·d + d."""
    total, c_in = 0, 3
    for c_out, units in zip(channels, units_per_stage, strict=True):
        total += 3 * 3 * c_in * c_out + c_out + c_out  # stride-2 conv + its PReLU
        total += units * 2 * (3 * 3 * c_out * c_out + c_out + c_out)  # [conv + PReLU] × 2
        c_in = c_out
    return total + channels[-1] * 7 * 6 * embedding_dim + embedding_dim


def test_sfnet20_parameter_count_matches_the_table():
    model = SFNet(20)
    assert sum(p.numel() for p in model.parameters()) == hand_counted_sfnet_parameters((1, 2, 4, 1))
    # The same sum written out for SFNet-20 so that a wrong helper cannot hide a wrong model:
    # stage convs 1,792 + 73,856 + 295,168 + 1,180,160, their PReLUs 960,
    # residual units 1·73,984 + 2·295,424 + 4·1,180,672 + 1·4,720,640, FC 11,010,560.
    assert sum(p.numel() for p in model.parameters()) == 22_670_656


@pytest.mark.parametrize("depth", sorted(UNITS))
def test_sfnet_layer_structure(depth):
    model = SFNet(depth)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 + 2 * sum(UNITS[depth]) == depth
    assert not any(
        isinstance(m, nn.BatchNorm2d | nn.MaxPool2d | nn.AvgPool2d) for m in model.modules()
    )
    strided = [c for c in convs if c.stride == (2, 2)]
    assert [c.out_channels for c in strided] == [64, 128, 256, 512]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert [p.num_parameters for p in prelus] == [c.out_channels for c in convs]
    assert sum(p.numel() for p in model.parameters()) == hand_counted_sfnet_parameters(UNITS[depth])


def test_sfnet_shapes_and_no_activation_after_the_embedding():
    model = SFNet(4, embedding_dim=16).eval()
    spatial = []
    model.stages.register_forward_hook(lambda _m, _i, out: spatial.append(out.shape))
    with torch.no_grad():
        features = model(torch.randn(2, 3, 112, 96))
    assert spatial == [torch.Size([2, 512, 7, 6])]
    assert features.shape == (2, 16)
    assert list(model.children())[-1].__class__ is nn.Linear
    assert (features < 0).any()  # a ReLU at the end could not produce this


def test_channels_last_gives_the_same_features():
    torch.manual_seed(0)
    model = SFNet(4, embedding_dim=8).eval()
    images = torch.randn(2, 3, 112, 96)
    with torch.no_grad():
        expected = model(images)
        model = model.to(memory_format=torch.channels_last)
        actual = model(images.to(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_residual_unit_is_identity_plus_body():
    model = SFNet(10, embedding_dim=8)
    unit = model.stages[1][2]  # stage 2: conv, PReLU, then its residual unit
    x = torch.randn(1, 128, 28, 24)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), x + unit.body(x))


@pytest.mark.parametrize("dim", [2, 3, 10])
def test_mnistnet_maps_digits_to_the_feature_dimension(dim):
    model = MnistNet(dim).eval()
    with torch.no_grad():
        features = model(torch.randn(5, 1, 28, 28))
    assert features.shape == (5, dim)
    assert isinstance(model.embedding, nn.Linear)


@pytest.mark.parametrize(("bad", "error"), [(1, ValueError), (0, ValueError), (2.5, TypeError),
                                            (True, TypeError), ("3", TypeError)])  # fmt: skip
def test_embedding_dim_is_validated(bad, error):
    with pytest.raises(error, match="embedding_dim must be an integer >= 2"):
        MnistNet(bad)


def test_build_model_names():
    assert isinstance(build_model("mnistnet", 3), MnistNet)
    assert build_model("sfnet4", 32).depth == 4
    assert build_model("SFNet-20", 32).depth == 20
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet50", 3)
    with pytest.raises(ValueError, match="depth"):
        SFNet(18)


@pytest.mark.parametrize("depth", [4, 10])
def test_a_narrower_sfnet_has_the_channels_it_was_given(depth):
    """``width`` 16: the stages have 16/32/64/128 channels, the parameters of the table's
    formula with those channels, and the same 112×96 input and 7×6 final grid."""
    model = SFNet(depth, embedding_dim=3, width=16).eval()
    strided = [c for c in model.modules() if isinstance(c, nn.Conv2d) and c.stride == (2, 2)]
    assert [c.out_channels for c in strided] == [16, 32, 64, 128]
    expected = hand_counted_sfnet_parameters(UNITS[depth], 3, channels=(16, 32, 64, 128))
    assert sum(p.numel() for p in model.parameters()) == expected
    with torch.no_grad():
        assert model(torch.randn(2, 3, 112, 96)).shape == (2, 3)


def test_sfnet_width_reaches_the_model_from_the_config_and_leaves_old_recipes_alone(tmp_path):
    from sphereviz.build import build_model_and_loss
    from sphereviz.config import TrainConfig

    cache = str(tmp_path / "faces")
    paper = TrainConfig(dataset="faces", faces_cache=cache, model="sfnet4", dim=3)
    narrow = TrainConfig(dataset="faces", faces_cache=cache, model="sfnet4", dim=3, sfnet_width=16)
    model, _ = build_model_and_loss(narrow, num_classes=6)
    assert model.stages[0][0].out_channels == 16 and model.embedding.in_features == 128 * 7 * 6
    assert build_model_and_loss(paper, num_classes=6)[0].stages[0][0].out_channels == 64
    # None is left out of the recipe: the runs made before the field existed keep their hash
    assert "sfnet_width" not in paper.recipe() and narrow.recipe()["sfnet_width"] == 16
    assert paper.recipe_hash() != narrow.recipe_hash()
    with pytest.raises(ValueError, match="sfnet_width sets an SFNet's channels"):
        TrainConfig(model="mnistnet", sfnet_width=16)
    with pytest.raises(ValueError, match="sfnet_width"):
        TrainConfig(dataset="faces", faces_cache=cache, model="sfnet4", sfnet_width=0)


def test_quick_faces_overrides_give_the_trainers_minimum_of_steps():
    """Notebook 04's quick mode: 240 faces, a fifth held out, 192 to train in batches of 8 =
    24 batches, so 13 epochs (312 steps: 12 would give 288 < 300); and in general the fewest
    epochs whose batches reach MIN_STEPS."""
    from sphereviz.config import MIN_STEPS
    from sphereviz.recipes import QUICK_SFNET_WIDTH, quick_faces_overrides

    assert quick_faces_overrides(240, 0.2) == {
        "batch_size": 8, "epochs": 13, "sfnet_width": QUICK_SFNET_WIDTH,
    }  # fmt: skip
    for faces, fraction in ((375, 0.1), (37, 0.1), (5, 0.2), (10_000, 0.2)):
        epochs = quick_faces_overrides(faces, fraction)["epochs"]
        batches = max(1, int(faces * (1 - fraction)) // 8)
        assert epochs * batches >= MIN_STEPS > (epochs - 1) * batches
