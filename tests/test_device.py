"""Device and precision resolution, shared by the Distiller and every teacher."""

from __future__ import annotations

import pytest
import torch

from compress.device import autocast, resolve_device, resolve_precision
from compress.errors import CompressError


def test_auto_none_and_explicit_devices():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(CompressError, match="'gpu0' is not a torch device"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where torch sees no GPU")
def test_cuda_without_a_gpu_is_an_error_not_a_fallback():
    with pytest.raises(CompressError, match="torch sees no CUDA GPU"):
        resolve_device("cuda:0")
    with pytest.raises(CompressError, match="needs a GPU"):
        resolve_precision("fp16", torch.device("cpu"))


def test_precision_on_the_cpu_is_fp32_and_autocast_a_no_op_there():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32" and resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(CompressError, match="precision 'fp8' is not one of auto, fp32, bf16, fp16"):
        resolve_precision("fp8", cpu)
    with autocast("fp32", cpu):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
