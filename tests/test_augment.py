"""Tests of helpers.augment (BatchTwoViewAugment, BatchCropFlip) and of the augmentation throughput
benchmark.

Three kinds:
(a) distributions: every parameter is drawn per image from the same distribution as the
    seeds' per-image torchvision pipeline (crop boxes against samples of torchvision's own
    ``RandomResizedCrop.get_params``, with wrong variants that must fail the same check);
(b) exactness: given parameters, the output equals torchvision.transforms.v2.functional's
    ops applied image by image;
(c) behaviour: shapes, dtypes, range, layouts, reproducibility, independence, devices.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections import Counter
from itertools import permutations
from pathlib import Path

import pytest
import torch
import torchvision.transforms.v2 as v2
import torchvision.transforms.v2.functional as TF

from helpers.augment import BRIGHTNESS, CONTRAST, HUE, JITTER_OPS, SATURATION, BatchCropFlip, BatchTwoViewAugment

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NUM_CROPS = 3000  # crop boxes per distribution sample
# Two-sample KS statistic allowed between our crops and torchvision's. Under the null,
# with 3000 + 3000 samples, P(KS > 0.06) is about 1e-4; the wrong variants below give 0.1-0.5.
KS_TOLERANCE = 0.06


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: one intra-op thread is faster, and fair to the other processes on the machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ks_statistic(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup_x |F_a(x) - F_b(x)| (exact with ties)."""
    a, b = torch.sort(a.double().flatten()).values, torch.sort(b.double().flatten()).values
    points = torch.cat((a, b))
    cdf_a = torch.searchsorted(a, points, right=True).double() / len(a)
    cdf_b = torch.searchsorted(b, points, right=True).double() / len(b)
    return (cdf_a - cdf_b).abs().max().item()


def crop_statistics(top, left, height, width, image_size=(32, 32)) -> dict[str, torch.Tensor]:
    """The crop box's distributions that the tests compare."""
    top, left, height, width = (torch.as_tensor(t, dtype=torch.float64) for t in (top, left, height, width))
    return {
        "area_fraction": height * width / (image_size[0] * image_size[1]),
        "log_aspect_ratio": torch.log(width / height),
        "relative_top": top / (image_size[0] - height + 1),  # uniform placement: U[0, 1) in steps
        "relative_left": left / (image_size[1] - width + 1),
    }


@pytest.fixture(scope="module")
def torchvision_crops() -> dict[str, torch.Tensor]:
    """NUM_CROPS boxes from torchvision's RandomResizedCrop.get_params, one call per image as
    the seeds' per-image pipeline draws them (scale (0.2, 1), ratio (3/4, 4/3), 32x32 images)."""
    torch.manual_seed(0)
    image = torch.zeros(3, 32, 32)
    boxes = [v2.RandomResizedCrop.get_params(image, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(NUM_CROPS)]
    top, left, height, width = (torch.tensor(column) for column in zip(*boxes))
    return crop_statistics(top, left, height, width)


def our_crops(**kwargs) -> dict[str, torch.Tensor]:
    params = BatchTwoViewAugment(**kwargs).sample_params(NUM_CROPS, generator=generator(1))
    return crop_statistics(params["crop_top"], params["crop_left"], params["crop_height"], params["crop_width"])


def neutral_params(n: int, image_size=(32, 32)) -> dict:
    """Parameters under which apply() is the identity (full crop, every op off)."""
    height, width = image_size
    return {
        "crop_top": torch.zeros(n, dtype=torch.long),
        "crop_left": torch.zeros(n, dtype=torch.long),
        "crop_height": torch.full((n,), height, dtype=torch.long),
        "crop_width": torch.full((n,), width, dtype=torch.long),
        "flip": torch.zeros(n, dtype=torch.bool),
        "jitter": torch.zeros(n, dtype=torch.bool),
        "brightness": torch.ones(n),
        "contrast": torch.ones(n),
        "saturation": torch.ones(n),
        "hue": torch.zeros(n),
        "jitter_order": torch.arange(4).repeat(n, 1),
        "grayscale": torch.zeros(n, dtype=torch.bool),
        "blur": torch.zeros(n, dtype=torch.bool),
        "blur_sigma": torch.ones(n),
        "image_size": (height, width),
    }


def torchvision_view(image: torch.Tensor, params: dict, i: int, size: int = 32) -> torch.Tensor:
    """Image i's view made by torchvision.transforms.v2.functional, one op at a time, in the
    seeds' order, with image i's parameters. Shape: (3, H, W) float -> (3, size, size)."""
    out = TF.resized_crop(
        image,
        int(params["crop_top"][i]),
        int(params["crop_left"][i]),
        int(params["crop_height"][i]),
        int(params["crop_width"][i]),
        [size, size],
        antialias=False,
    )
    if params["flip"][i]:
        out = TF.horizontal_flip(out)
    if params["jitter"][i]:
        for op in params["jitter_order"][i].tolist():  # ColorJitter.transform's loop over fn_idx
            if op == BRIGHTNESS:
                out = TF.adjust_brightness(out, float(params["brightness"][i]))
            elif op == CONTRAST:
                out = TF.adjust_contrast(out, float(params["contrast"][i]))
            elif op == SATURATION:
                out = TF.adjust_saturation(out, float(params["saturation"][i]))
            elif op == HUE:
                out = TF.adjust_hue(out, float(params["hue"][i]))
    if params["grayscale"][i]:
        out = TF.rgb_to_grayscale(out, num_output_channels=3)
    if params["blur"][i]:
        sigma = float(params["blur_sigma"][i])
        out = TF.gaussian_blur(out, [3, 3], [sigma, sigma])
    return out


# ---------------------------------------------------------------------------- (a) distributions
@pytest.mark.parametrize("statistic", ["area_fraction", "log_aspect_ratio", "relative_top", "relative_left"])
def test_crop_distribution_matches_torchvision_get_params(torchvision_crops, statistic):
    """Do the crop boxes follow RandomResizedCrop.get_params (scale (0.2, 1), ratio (3/4, 4/3))?"""
    ks = ks_statistic(our_crops()[statistic], torchvision_crops[statistic])
    assert ks < KS_TOLERANCE, f"{statistic}: KS statistic {ks:.3f} against torchvision's get_params"


@pytest.mark.parametrize(
    ("wrong_variant", "statistic"),
    [
        ({"crop_scale": (0.08, 1.0)}, "area_fraction"),  # torchvision's ImageNet default, not the seeds'
        ({"crop_scale": (0.2, 0.8)}, "area_fraction"),
        ({"crop_ratio": (1.0, 1.0)}, "log_aspect_ratio"),  # no aspect-ratio jitter
        ({"crop_ratio": (0.5, 2.0)}, "log_aspect_ratio"),
    ],
)
def test_crop_distribution_check_rejects_wrong_variants(torchvision_crops, wrong_variant, statistic):
    """Would the distribution check above catch a wrong crop configuration?"""
    ks = ks_statistic(our_crops(**wrong_variant)[statistic], torchvision_crops[statistic])
    assert ks > 2 * KS_TOLERANCE, f"{wrong_variant} passes as the seeds' crop (KS {ks:.3f} on {statistic})"


def test_crop_boxes_lie_inside_the_image_and_in_range():
    """Every box fits the image, and its area fraction and aspect ratio are in range (after
    torchvision's rounding of the side lengths to whole pixels)."""
    params = BatchTwoViewAugment().sample_params(20_000, generator=generator(2), image_size=(32, 40))
    top, left, h, w = params["crop_top"], params["crop_left"], params["crop_height"], params["crop_width"]
    assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (top + h <= 32).all() and (left + w <= 40).all()
    torch.testing.assert_close(params["crop_area_fraction"], (h * w).float() / (32 * 40))
    assert params["crop_area_fraction"].min() > 0.2 - 0.05 and params["crop_area_fraction"].max() <= 1.0
    assert params["crop_aspect_ratio"].min() > 0.75 * 0.9 and params["crop_aspect_ratio"].max() < 4 / 3 / 0.9
    # the whole range is used: small and large crops, tall and wide ones
    assert params["crop_area_fraction"].min() < 0.22 and params["crop_area_fraction"].max() > 0.95
    assert params["crop_aspect_ratio"].min() < 0.78 and params["crop_aspect_ratio"].max() > 1.28


@pytest.mark.parametrize(
    ("scale", "ratio", "image_size"),
    [((0.9, 1.0), (3.0, 4.0), (32, 32)), ((0.9, 1.0), (0.2, 0.3), (32, 48)), ((1.0, 1.0), (2.0, 2.0), (20, 40))],
)
def test_central_crop_fallback_equals_torchvision(scale, ratio, image_size):
    """When no try fits, is the box torchvision's central-crop fallback?"""
    torch.manual_seed(0)
    expected = v2.RandomResizedCrop.get_params(torch.zeros(3, *image_size), list(scale), list(ratio))
    params = BatchTwoViewAugment(crop_scale=scale, crop_ratio=ratio).sample_params(
        64, generator=generator(3), image_size=image_size
    )
    for key, value in zip(("crop_top", "crop_left", "crop_height", "crop_width"), expected):
        assert params[key].tolist() == [value] * 64, f"{key}: {params[key][:4].tolist()} instead of {value}"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {"flip": 0.5, "jitter": 0.8, "grayscale": 0.2, "blur": 0.5}),  # the seeds' pipeline
        (
            {"flip_p": 0.1, "jitter_p": 0.3, "gray_p": 0.6, "blur_p": 0.9},
            {"flip": 0.1, "jitter": 0.3, "grayscale": 0.6, "blur": 0.9},
        ),
    ],
)
def test_random_apply_rates(kwargs, expected):
    """Flip, jitter, grayscale and blur are each applied with their probability."""
    params = BatchTwoViewAugment(**kwargs).sample_params(20_000, generator=generator(4))
    for key, p in expected.items():
        assert params[key].dtype == torch.bool
        rate = params[key].float().mean().item()
        assert abs(rate - p) < 0.02, f"{key} applied to {rate:.3f} of the images, expected {p}"
    # the four decisions are independent of each other
    both = (params["flip"] & params["grayscale"]).float().mean().item()
    assert abs(both - expected["flip"] * expected["grayscale"]) < 0.02


@pytest.mark.parametrize(
    ("s", "factor_range", "hue_range"), [(0.5, (0.6, 1.4), (-0.1, 0.1)), (1.0, (0.2, 1.8), (-0.2, 0.2))]
)
def test_jitter_factors_are_uniform_in_colorjitter_ranges(s, factor_range, hue_range):
    """ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s): factors uniform in [1 - 0.8 s, 1 + 0.8 s], hue in ±0.2 s."""
    params = BatchTwoViewAugment(s=s).sample_params(20_000, generator=generator(5))
    for key, (low, high) in [
        ("brightness", factor_range),
        ("contrast", factor_range),
        ("saturation", factor_range),
        ("hue", hue_range),
    ]:
        values = params[key]
        width = high - low
        assert values.min() >= low and values.max() <= high, f"{key} leaves [{low}, {high}]"
        assert values.min() < low + 0.01 * width and values.max() > high - 0.01 * width, f"{key} misses its ends"
        quartiles = torch.quantile(values, torch.tensor([0.25, 0.5, 0.75]))
        torch.testing.assert_close(
            quartiles, torch.tensor([low + width / 4, low + width / 2, low + 3 * width / 4]), atol=0.02 * width, rtol=0
        )
    # different factors of one image are independent draws
    assert abs(torch.corrcoef(torch.stack((params["brightness"], params["contrast"])))[0, 1]) < 0.05


def test_jitter_order_is_a_uniform_random_permutation_per_image():
    """Each image gets its own op order; all 24 orders occur, about equally often."""
    n = 24_000
    order = BatchTwoViewAugment().sample_params(n, generator=generator(6))["jitter_order"]
    assert order.shape == (n, 4)
    assert (order.sort(dim=1).values == torch.arange(4)).all(), "each row must be a permutation of 0..3"
    counts = Counter(map(tuple, order.tolist()))
    assert set(counts) == set(permutations(range(4))), f"only {len(counts)} of the 24 orders occur"
    assert max(abs(c - n / 24) for c in counts.values()) < 0.2 * n / 24, counts


def test_blur_sigma_is_uniform_in_range():
    """GaussianBlur(sigma=(0.1, 2.0)): sigma uniform in [0.1, 2.0], drawn per image."""
    sigma = BatchTwoViewAugment().sample_params(20_000, generator=generator(7))["blur_sigma"]
    assert sigma.min() >= 0.1 and sigma.max() <= 2.0
    assert sigma.min() < 0.12 and sigma.max() > 1.98
    torch.testing.assert_close(sigma.mean(), torch.tensor(1.05), atol=0.02, rtol=0)
    assert ks_statistic(sigma, torch.rand(20_000, generator=generator(8)) * 1.9 + 0.1) < 0.03


def test_every_image_gets_its_own_parameters():
    """No parameter is shared across the batch (torchvision's batched v2 transforms share one set)."""
    params = BatchTwoViewAugment().sample_params(256, generator=generator(9))
    for key, value in params.items():
        if key == "image_size":
            continue
        distinct = len(set(map(str, value.tolist())))
        assert distinct > 1, f"{key} is the same for all 256 images"
    for key in ("brightness", "contrast", "saturation", "hue", "blur_sigma"):
        assert len(set(params[key].tolist())) == 256, f"{key} repeats within the batch"


def test_identical_images_and_the_two_views_come_out_different():
    """A batch of copies of one image: every view differs from every other view."""
    image = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8, generator=generator(10))
    x1, x2 = BatchTwoViewAugment()(image.expand(64, -1, -1, -1), generator=generator(11))
    views = torch.cat((x1, x2)).flatten(1)  # (128, 3072)
    distances = torch.cdist(views, views)
    distances.fill_diagonal_(float("inf"))
    assert distances.min() > 1e-3, "two views of the batch are identical: parameters are shared"


# ---------------------------------------------------------------------------- (b) exactness
def test_identity_parameters_return_the_input():
    """Full crop and every op off: the output is the input (the grid samples pixel centres)."""
    x = torch.rand(8, 3, 32, 32, generator=generator(12))
    out = BatchTwoViewAugment().apply(x, neutral_params(8))
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize(("image_size", "size"), [((32, 32), 32), ((40, 56), 32), ((32, 32), 24), ((16, 20), 32)])
def test_crop_equals_torchvision_resized_crop(flip, image_size, size):
    """Crop (+ flip) only: equals v2.functional.resized_crop(antialias=False) (+ horizontal_flip)."""
    n = 16
    augment = BatchTwoViewAugment(size=size)
    params = augment.sample_params(n, generator=generator(13), image_size=image_size)
    params.update({key: torch.zeros(n, dtype=torch.bool) for key in ("jitter", "grayscale", "blur")})
    params["flip"] = torch.full((n,), flip)
    x = torch.rand(n, 3, *image_size, generator=generator(14))
    out = augment.apply(x, params)
    expected = torch.stack([torchvision_view(x[i], params, i, size=size) for i in range(n)])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("op", "factor"),
    [
        (BRIGHTNESS, 0.6),
        (BRIGHTNESS, 1.4),
        (CONTRAST, 0.6),
        (CONTRAST, 1.4),
        (SATURATION, 0.6),
        (SATURATION, 1.4),
        (SATURATION, 0.0),
        (HUE, -0.1),
        (HUE, 0.1),
        (HUE, 0.5),
    ],
)
def test_single_colour_op_equals_torchvision(op, factor):
    """One jitter op (the others neutral): equals v2.functional.adjust_<op> with the same factor."""
    n = 8
    x = torch.rand(n, 3, 32, 32, generator=generator(15))
    x[0] = x[0, :1]  # a gray image (hue and saturation are undefined there)
    params = neutral_params(n)
    params["jitter"][:] = True
    params["jitter_order"] = torch.tensor([op] + [o for o in range(4) if o != op]).repeat(n, 1)
    params[JITTER_OPS[op]] = torch.full((n,), factor)
    functional = {
        BRIGHTNESS: TF.adjust_brightness,
        CONTRAST: TF.adjust_contrast,
        SATURATION: TF.adjust_saturation,
        HUE: TF.adjust_hue,
    }[op]
    expected = torch.stack([functional(x[i], factor) for i in range(n)])
    torch.testing.assert_close(BatchTwoViewAugment().apply(x, params), expected, atol=1e-5, rtol=0)


def test_grayscale_equals_torchvision():
    """Grayscale: v2.functional.rgb_to_grayscale(num_output_channels=3) (0.2989, 0.587, 0.114)."""
    x = torch.rand(8, 3, 32, 32, generator=generator(16))
    params = neutral_params(8)
    params["grayscale"][:] = True
    out = BatchTwoViewAugment().apply(x, params)
    torch.testing.assert_close(out, TF.rgb_to_grayscale(x, num_output_channels=3), atol=1e-6, rtol=0)
    weights = torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close(out[:, :1], (x * weights).sum(1, keepdim=True), atol=1e-6, rtol=0)


def test_blur_equals_torchvision_with_a_sigma_per_image():
    """Blur: v2.functional.gaussian_blur(kernel 3, reflect padding), each image its own sigma."""
    n = 12
    x = torch.rand(n, 3, 32, 32, generator=generator(17))
    params = neutral_params(n)
    params["blur"][:] = True
    params["blur_sigma"] = torch.linspace(0.1, 2.0, n)
    out = BatchTwoViewAugment().apply(x, params)
    expected = torch.stack(
        [TF.gaussian_blur(x[i], [3, 3], [s, s]) for i, s in enumerate(params["blur_sigma"].tolist())]
    )
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    # and the sigmas really differ: the strongest blur is not the weakest
    assert (out[0] - out[-1]).abs().max() > 0.01 or (expected[0] - expected[-1]).abs().max() < 0.01


@pytest.mark.parametrize("seed", [18, 19])
def test_full_pipeline_equals_torchvision_image_by_image(seed):
    """Random parameters for every step at once (per-image op orders included): each view equals
    torchvision's functional ops applied to that image with its parameters, in the seeds' order."""
    n = 32
    augment = BatchTwoViewAugment()
    images = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=generator(seed))
    params = augment.sample_params(n, generator=generator(seed + 100))
    out = augment.apply(images, params)
    x = images.permute(0, 3, 1, 2).float() / 255
    expected = torch.stack([torchvision_view(x[i], params, i) for i in range(n)])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    # the check is not vacuous: the parameters used every op, and the order matters
    assert params["jitter"].any() and params["grayscale"].any() and params["blur"].any() and params["flip"].any()
    shuffled = dict(params, jitter_order=params["jitter_order"].roll(1, dims=0))
    assert not torch.allclose(augment.apply(images, shuffled), expected, atol=1e-3)


# ---------------------------------------------------------------------------- (c) behaviour
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((6, 32, 32, 3), torch.uint8),
        ((6, 3, 32, 32), torch.uint8),
        ((6, 3, 32, 32), torch.float32),
        ((6, 3, 32, 32), torch.float64),
        ((6, 40, 48, 3), torch.uint8),
        ((1, 3, 32, 32), torch.float32),
    ],
)
@pytest.mark.parametrize("size", [32, 24])
def test_output_shape_dtype_and_range(shape, dtype, size):
    """Two float32 (B, 3, size, size) views in [0, 1] from every accepted input layout."""
    if dtype == torch.uint8:
        images = torch.randint(0, 256, shape, dtype=dtype, generator=generator(20))
    else:
        images = torch.rand(shape, dtype=dtype, generator=generator(20))
    x1, x2 = BatchTwoViewAugment(size=size)(images, generator=generator(21))
    for view in (x1, x2):
        assert view.shape == (shape[0], 3, size, size)
        assert view.dtype == torch.float32 and view.device == images.device
        assert view.min() >= 0.0 and view.max() <= 1.0
        assert not view.requires_grad


def test_uint8_hwc_and_float_chw_inputs_agree():
    """The same images as uint8 HWC and as float CHW in [0, 1] give the same views."""
    images = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8, generator=generator(22))
    augment = BatchTwoViewAugment()
    from_uint8 = augment(images, generator=generator(23))
    from_chw_uint8 = augment(images.permute(0, 3, 1, 2), generator=generator(23))
    from_float = augment(images.permute(0, 3, 1, 2).float() / 255, generator=generator(23))
    for a, b, c in zip(from_uint8, from_chw_uint8, from_float):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        torch.testing.assert_close(a, c, atol=1e-6, rtol=0)


def test_generator_makes_runs_reproducible_and_leaves_global_rng_alone():
    """Same seed, same views; another seed, other views; the global RNG is not touched."""
    images = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8, generator=generator(24))
    augment = BatchTwoViewAugment()
    state = torch.get_rng_state()
    first = augment(images, generator=generator(25))
    assert torch.equal(torch.get_rng_state(), state), "forward drew from the global RNG despite a generator"
    second = augment(images, generator=generator(25))
    other = augment(images, generator=generator(26))
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    assert not torch.allclose(first[0], other[0])
    torch.manual_seed(27)
    global_first = augment(images)
    torch.manual_seed(27)
    torch.testing.assert_close(augment(images), global_first, atol=0, rtol=0)


def test_works_under_no_grad_and_inference_mode():
    images = torch.rand(4, 3, 32, 32, requires_grad=True)
    augment = BatchTwoViewAugment()
    with torch.no_grad():
        augment(images)
    with torch.inference_mode():
        x1, _ = augment(images.detach())
    assert x1.shape == (4, 3, 32, 32)


def test_empty_batch_gives_empty_views():
    x1, x2 = BatchTwoViewAugment()(torch.zeros(0, 32, 32, 3, dtype=torch.uint8))
    assert x1.shape == x2.shape == (0, 3, 32, 32) and x1.dtype == torch.float32


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.zeros(32, 32, 3, dtype=torch.uint8), "images\\[None\\]"),
        (torch.zeros(2, 32, 32, 4, dtype=torch.uint8), "channel"),
        (torch.zeros(2, 3, 32, 32, dtype=torch.int32), "uint8 or floating point"),
    ],
)
def test_bad_inputs_raise_errors_that_say_what_to_do(images, message):
    with pytest.raises((ValueError, TypeError), match=message):
        BatchTwoViewAugment()(images)


def test_params_for_another_image_size_are_rejected():
    augment = BatchTwoViewAugment()
    params = augment.sample_params(2, generator=generator(28))  # drawn for 32x32
    with pytest.raises(ValueError, match="image_size"):
        augment.apply(torch.rand(2, 3, 40, 40), params)


@pytest.mark.parametrize(
    "kwargs", [{"crop_scale": (0.0, 1.0)}, {"blur_kernel": 4}, {"gray_p": 1.5}, {"s": 3.0}, {"blur_sigma": (0.0, 1.0)}]
)
def test_invalid_configurations_are_rejected(kwargs):
    with pytest.raises(ValueError):
        BatchTwoViewAugment(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu_and_never_synchronises():
    """On CUDA: the same views as on the CPU for the same parameters, outputs on the GPU, and
    a forward pass that never waits for the GPU (no .item(), no data-dependent shapes)."""
    augment = BatchTwoViewAugment()
    images = torch.randint(0, 256, (64, 32, 32, 3), dtype=torch.uint8, generator=generator(29))
    params = augment.sample_params(64, generator=generator(30))
    cuda_params = {k: v.cuda() if torch.is_tensor(v) else v for k, v in params.items()}
    out = augment.apply(images.cuda(), cuda_params)
    torch.testing.assert_close(out.cpu(), augment.apply(images, params), atol=1e-4, rtol=0)
    gpu_images = images.cuda()
    cuda_generator = torch.Generator(device="cuda").manual_seed(0)
    augment(gpu_images, generator=cuda_generator)  # warm up (first calls may initialise)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        x1, x2 = augment(gpu_images, generator=cuda_generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert x1.is_cuda and x2.is_cuda
    with pytest.raises(ValueError, match="Generator"):
        augment(gpu_images, generator=generator(0))


# ---------------------------------------------------------------------------- benchmark
def _load_benchmark():
    path = PROJECT_ROOT / "benchmarks" / "augment_throughput.py"
    spec = importlib.util.spec_from_file_location("augment_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_smoke_run_writes_its_record(tmp_path):
    """benchmarks/augment_throughput.py --smoke runs both measurements and writes the JSON record."""
    benchmark = _load_benchmark()
    record = benchmark.main(["--smoke", "--device", "cpu", "--seconds", "0.2", "--results-dir", str(tmp_path)])
    files = list(tmp_path.glob("augment_throughput-*.json"))
    assert len(files) == 1 and files[0].name == f"augment_throughput-{record['device_slug']}.json"
    saved = json.loads(files[0].read_text())
    for key in (
        "date",
        "command",
        "device",
        "device_name",
        "torch_version",
        "cpu_count",
        "batch_size",
        "workers",
        "per_image_images_per_s",
        "batched_images_per_s",
        "ratio",
        "unit",
        "smoke",
    ):
        assert key in saved, f"the record lacks {key!r}"
    assert saved["smoke"] is True and saved["device"] == "cpu" and saved["torch_version"] == torch.__version__
    assert saved["per_image_images_per_s"] > 0 and saved["batched_images_per_s"] > 0
    assert math.isclose(saved["ratio"], saved["batched_images_per_s"] / saved["per_image_images_per_s"], rel_tol=0.01)
    assert saved["command"].startswith("python benchmarks/augment_throughput.py --smoke")


# ----------------------------------------------------------------------------- BatchCropFlip


def test_batch_crop_flip():
    """Padding 0 and no flip is the identity; flip_p=1 mirrors; crops are per image and seeded."""
    images = torch.randint(0, 256, (5, 6, 6, 3), dtype=torch.uint8)
    plain = images.permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(BatchCropFlip(padding=0, flip_p=0.0)(images), plain)
    torch.testing.assert_close(BatchCropFlip(padding=0, flip_p=1.0)(images), plain.flip(3))
    augment = BatchCropFlip(padding=2)
    a = augment(images, generator=torch.Generator().manual_seed(0))
    b = augment(images, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=0.0, atol=0.0)
    assert a.shape == (5, 3, 6, 6) and a.dtype == torch.float32
    # Every output is a shifted (and maybe mirrored) window of the zero-padded image.
    padded = torch.nn.functional.pad(plain, (2, 2, 2, 2))
    for i in range(5):
        windows = [padded[i, :, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(a[i], w) or torch.equal(a[i], w.flip(2)) for w in windows)
    many = BatchCropFlip(padding=4)(torch.randint(0, 256, (64, 6, 6, 3), dtype=torch.uint8).expand(64, 6, 6, 3))
    assert len({tuple(v.flatten().tolist()) for v in many}) > 10
