"""Feature extraction and the weighted k-NN monitor used during self-supervised training.

This module is the *training-time monitor*, not a graded task. The notebooks' graded probe
`run_knn_probe` is scikit-learn's plain k-NN (k = 5, unweighted majority vote) that the
students write themselves; `knn_accuracy` below is the weighted k-NN classifier of
InstDisc, the standard way SSL papers and libraries track representation quality while
training (k = 200, temperature 0.1), computed on the GPU in a second or two. The two give
different numbers; neither is a drop-in for the other.

References:
    - [0] Wu, Xiong, Yu, Lin. Unsupervised Feature Learning via Non-Parametric Instance
      Discrimination (InstDisc), CVPR 2018, https://arxiv.org/abs/1805.01978 (Sec. 3.4,
      "weighted k-nearest-neighbour classifier").
    - [1] solo-learn, `solo/utils/knn.py` (`WeightedKNNClassifier`), the implementation
      this one follows.

Typical use in a notebook::

    monitor = KNNMonitor(train_images, train_labels, test_images, test_labels)
    history = fit(simclr_step, model, optimizer, train_images, monitor=monitor, ...)
    print(f"k-NN accuracy: {100 * monitor(model):.1f} %")
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from helpers.data.subsets import class_balanced_indices  # the monitor's subsets (also helpers.train's)
from helpers.image_ops import to_float_chw

__all__ = ["encode_images", "knn_accuracy", "KNNMonitor"]


def _module_device(module: torch.nn.Module) -> torch.device | None:
    """The device of the module's first parameter (or buffer); None when it has neither."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return None


def _first_output(output):
    """The features from an encoder's output: the tensor itself, or element 0 of a tuple/list."""
    if isinstance(output, (tuple, list)):
        if not output:
            raise ValueError("the encoder returned an empty tuple/list; expected features first")
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"the encoder returned {type(output).__name__}; expected a tensor of features or a "
            "tuple/list whose first element is the features (e.g. SimCLRModel's (repr, proj))"
        )
    return output


@torch.no_grad()
def encode_images(
    encoder: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module,
    images: torch.Tensor,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    amp: bool | str = "auto",
    channels_last: bool | str = "auto",
) -> torch.Tensor:
    """Encode a whole split of images with `encoder`, batch by batch, without gradients.

    The encoder is switched to eval mode (batch norm uses its running statistics) and every
    submodule's train/eval flag is restored afterwards, so this is safe to call in the middle
    of training. Images go to the device one batch at a time as uint8 and are converted there.

    Args:
        encoder: a module (or callable) mapping float images in [0, 1], shape (B, 3, H, W),
            to features (B, D) -- or to a tuple/list whose first element is the features
            (SimCLRModel returns (repr, proj), BYOLModel (repr, proj, pred)); outputs with more
            than two dimensions are flattened to (B, D).
        images: Shape: (N, H, W, 3) uint8 (the layout of `helpers.data.load_cifar10`), or
            (N, 3, H, W) uint8 or float in [0, 1]. May live on the CPU or on the device.
        batch_size: images per forward pass.
        device: where to run; default: the encoder's device (the CPU for parameterless callables).
        amp: "auto" runs the forward pass under bf16 autocast on CUDA (fp16 where the GPU has no
            bf16); False keeps float32. Ignored on the CPU.
        channels_last: "auto" feeds channels_last batches on CUDA (faster convolutions).

    Returns:
        Shape: (N, D) float32 features on `device`, in the order of `images`.
    """
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(images)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, 3) or (N, 3, H, W), got {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    module = encoder if isinstance(encoder, torch.nn.Module) else None
    if device is None:
        device = (_module_device(module) if module is not None else None) or images.device
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    use_amp = on_cuda and amp not in (False, None, "off")
    # Native bf16 on Ampere and newer; fp16 on older GPUs (T4, V100), which only emulate bf16.
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    use_channels_last = on_cuda and channels_last not in (False, None, "off")

    # Remember every submodule's flag: encoder.train(True) afterwards would un-freeze e.g. a
    # deliberately frozen batch norm inside it.
    modes = [(m, m.training) for m in module.modules()] if module is not None else []
    if module is not None:
        module.eval()
    features = []
    try:
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device, non_blocking=True)
            x = to_float_chw(batch)  # (B, 3, H, W) float32 in [0, 1]
            x = x.contiguous(memory_format=torch.channels_last) if use_channels_last else x.contiguous()
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                out = _first_output(encoder(x))
            features.append(out.reshape(out.shape[0], -1).float())  # (B, D)
    finally:
        for submodule, was_training in modes:
            submodule.training = was_training
    if not features:
        raise ValueError("images is empty; nothing to encode")
    return torch.cat(features)  # (N, D)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = 10,
    chunk_size: int = 1024,
) -> float:
    """Weighted k-NN accuracy of InstDisc [0] (solo-learn's `WeightedKNNClassifier` [1]).

    NOT the graded `run_knn_probe` of the notebooks (scikit-learn, k = 5, unweighted vote):
    this is the monitor SSL papers report during training. For every test feature:

    1. both feature sets are L2-normalised, so `s_i = cos(f_test, f_train_i)`;
    2. the `k` training features with the highest similarity are its neighbours
       (`k` is capped at the number of training features);
    3. neighbour `i` votes for its class with weight `w_i = exp(s_i / T)`;
    4. the prediction is the class with the largest summed weight
       (`argmax_c sum_i w_i [y_i = c]`; a tie goes to the lowest class index).

    Similarities are computed for `chunk_size` test features at a time, so memory is
    `chunk_size x N_train` whatever the size of the test set. Everything runs on the device of
    `train_features` (the GPU when the features came from it).

    Args:
        train_features: Shape: (N_train, D), any float dtype (computed in float32).
        train_labels: Shape: (N_train,) integer classes in [0, num_classes).
        test_features: Shape: (N_test, D).
        test_labels: Shape: (N_test,).
        k: number of neighbours (InstDisc and solo-learn: 200).
        temperature: `T` in the weights `exp(s / T)` (InstDisc: 0.07, solo-learn: 0.1).
        num_classes: number of classes; None infers it from the labels.
        chunk_size: test features per similarity block.

    Returns:
        The fraction of test features whose predicted class equals the label, a Python float
        in [0, 1].
    """
    train_features = torch.as_tensor(train_features)
    device = train_features.device
    test_features = torch.as_tensor(test_features).to(device)
    train_labels = torch.as_tensor(train_labels).to(device=device, dtype=torch.long)
    test_labels = torch.as_tensor(test_labels).to(device=device, dtype=torch.long)
    if train_features.ndim != 2 or test_features.ndim != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            "features must be (N, D) matrices with the same D, got "
            f"{tuple(train_features.shape)} and {tuple(test_features.shape)}"
        )
    if train_labels.shape != train_features.shape[:1] or test_labels.shape != test_features.shape[:1]:
        raise ValueError("there must be exactly one label per feature row")
    if train_features.shape[0] == 0 or test_features.shape[0] == 0:
        raise ValueError("knn_accuracy needs at least one training and one test feature")
    if k < 1 or temperature <= 0 or chunk_size < 1:
        raise ValueError(f"need k >= 1, temperature > 0, chunk_size >= 1; got {k}, {temperature}, {chunk_size}")
    if num_classes is None:
        num_classes = int(torch.cat([train_labels, test_labels]).max()) + 1
    if int(train_labels.min()) < 0 or int(train_labels.max()) >= num_classes:
        raise ValueError(f"train labels must lie in [0, {num_classes}); pass num_classes= to change it")

    train_unit = F.normalize(train_features.float(), dim=1)  # (N_train, D)
    test_unit = F.normalize(test_features.float(), dim=1)  # (N_test, D)
    k = min(k, train_unit.shape[0])
    correct = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, test_unit.shape[0], chunk_size):
        queries = test_unit[start : start + chunk_size]  # (C, D)
        similarity = queries @ train_unit.T  # (C, N_train) cosine similarities
        top_similarity, top_index = similarity.topk(k, dim=1)  # (C, k) each
        neighbour_labels = train_labels[top_index]  # (C, k)
        weights = (top_similarity / temperature).exp()  # (C, k)  w_i = exp(s_i / T)
        votes = torch.zeros(queries.shape[0], num_classes, device=device)  # (C, num_classes)
        votes.scatter_add_(1, neighbour_labels, weights)  # sum of weights per class
        predictions = votes.argmax(dim=1)  # (C,) first maximum: ties -> lowest class index
        correct += (predictions == test_labels[start : start + chunk_size]).sum()
    return correct.item() / test_unit.shape[0]


class KNNMonitor:
    """The weighted k-NN accuracy of an encoder on fixed train/test splits, as one callable.

    Hand it to `helpers.train.fit(monitor=...)`; it encodes both splits with the current
    encoder (eval mode, no gradients) and returns `knn_accuracy`. The uint8 images are kept
    once per device, so on a GPU each call costs only the forward passes.

    Args:
        train_images: Shape: (N_train, 32, 32, 3) uint8, the memory bank (labels known).
        train_labels: Shape: (N_train,) int64.
        test_images: Shape: (N_test, 32, 32, 3) uint8, the images classified.
        test_labels: Shape: (N_test,) int64.
        k, temperature, num_classes: as in `knn_accuracy`.
        max_train: use a class-balanced subset of at most this many training images.
        max_test: the same for the test images.
        batch_size: images per forward pass in `encode_images`.

    Example::

        monitor = KNNMonitor(train_images, train_labels, test_images, test_labels, max_train=10_000)
        accuracy = monitor(model)  # model(x) -> features or (features, ...), a float in [0, 1]
    """

    label = "k-NN"  # how fit's epoch summary names the value

    def __init__(
        self,
        train_images: torch.Tensor,
        train_labels: torch.Tensor,
        test_images: torch.Tensor,
        test_labels: torch.Tensor,
        k: int = 200,
        temperature: float = 0.1,
        max_train: int | None = None,
        max_test: int | None = None,
        batch_size: int = 1024,
        num_classes: int | None = 10,
    ) -> None:
        train_images, train_labels = torch.as_tensor(train_images), torch.as_tensor(train_labels)
        test_images, test_labels = torch.as_tensor(test_images), torch.as_tensor(test_labels)
        if train_images.shape[0] != train_labels.shape[0] or test_images.shape[0] != test_labels.shape[0]:
            raise ValueError("KNNMonitor needs one label per image in both splits")
        if max_train is not None:
            keep = class_balanced_indices(train_labels, max_train)
            train_images, train_labels = train_images[keep], train_labels[keep]
        if max_test is not None:
            keep = class_balanced_indices(test_labels, max_test)
            test_images, test_labels = test_images[keep], test_labels[keep]
        self.train_images, self.train_labels = train_images, train_labels.long()
        self.test_images, self.test_labels = test_images, test_labels.long()
        self.k, self.temperature, self.num_classes = k, temperature, num_classes
        self.batch_size = batch_size
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def subset(self, max_train: int | None = None, max_test: int | None = None) -> KNNMonitor:
        """A monitor with the same settings on class-balanced subsets (smoke runs use this)."""
        return KNNMonitor(
            self.train_images,
            self.train_labels,
            self.test_images,
            self.test_labels,
            k=self.k,
            temperature=self.temperature,
            max_train=max_train,
            max_test=max_test,
            batch_size=self.batch_size,
            num_classes=self.num_classes,
        )

    def _images_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device.type == "cpu":
            return self.train_images, self.test_images
        if device not in self._on_device:  # one upload per device; uint8 is 3 KB per image
            self._on_device[device] = (self.train_images.to(device), self.test_images.to(device))
        return self._on_device[device]

    def __call__(self, encoder: Callable | torch.nn.Module, device: torch.device | str | None = None) -> float:
        """Weighted k-NN test accuracy of `encoder`'s features, a float in [0, 1]."""
        if device is None:
            device = (_module_device(encoder) if isinstance(encoder, torch.nn.Module) else None) or "cpu"
        device = torch.device(device)
        train_images, test_images = self._images_on(device)
        train_features = encode_images(encoder, train_images, self.batch_size, device)  # (N_train, D)
        test_features = encode_images(encoder, test_images, self.batch_size, device)  # (N_test, D)
        return knn_accuracy(
            train_features,
            self.train_labels,
            test_features,
            self.test_labels,
            k=self.k,
            temperature=self.temperature,
            num_classes=self.num_classes,
        )

    def __repr__(self) -> str:
        return (
            f"KNNMonitor(k={self.k}, temperature={self.temperature}, "
            f"train={self.train_images.shape[0]}, test={self.test_images.shape[0]})"
        )
