"""The homework's pre-trained encoder file (simclr_best_epoch.pt): what save_encoder writes,
load_encoder reads back, and a failed write leaves the earlier file whole."""

import pytest
import torch

from helpers.encoder_file import load_encoder, save_encoder
from helpers.models import cifar_resnet18


def test_round_trip(tmp_path):
    torch.manual_seed(0)
    encoder = cifar_resnet18()
    path = tmp_path / "simclr_best_epoch.pt"
    save_encoder(path, encoder, epoch=7, knn_accuracy=0.5, recipe={"lr": 0.6})
    loaded = cifar_resnet18()
    info = load_encoder(path, loaded)
    assert info == {"epoch": 7, "knn_accuracy": 0.5, "recipe": {"lr": 0.6}}
    for (name, a), (_, b) in zip(encoder.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_failed_write_keeps_the_earlier_file(tmp_path, monkeypatch):
    path = tmp_path / "simclr_best_epoch.pt"
    encoder = cifar_resnet18()
    save_encoder(path, encoder, epoch=1, knn_accuracy=None, recipe={})
    before = path.read_bytes()

    def broken_save(obj, file):
        file.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_encoder(path, encoder, epoch=2, knn_accuracy=0.9, recipe={})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
