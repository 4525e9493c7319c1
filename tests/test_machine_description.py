"""What a latency record says about the machine: the CPU model and the int8 features its ratios depend on."""

from __future__ import annotations

from compress.search.measure import cpu_model, int8_features, machine_description

XEON = """processor	: 0
model name	: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags		: fpu sse2 avx2 fma avx512f avx512bw avx512_vnni
"""
EPYC = """processor	: 0
model name	: AMD EPYC
flags		: fpu sse2 avx2 fma
"""
PIXEL = """processor	: 0
BogoMIPS	: 49.15
Features	: fp asimd aes crc32 atomics asimddp i8mm bf16
Hardware	: Google Tensor G3
"""


def test_int8_features_are_read_from_x86_flags_and_arm_features():
    assert int8_features(XEON) == ["avx2", "avx512bw", "avx512_vnni"]
    assert int8_features(EPYC) == ["avx2"]
    assert int8_features(PIXEL) == ["asimddp", "i8mm"]
    assert int8_features("") == []


def test_cpu_model_names_the_processor():
    assert cpu_model(XEON) == "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    assert cpu_model(PIXEL) == "Google Tensor G3"


def test_machine_description_carries_the_int8_features():
    machine = machine_description()
    assert set(machine) >= {"cpu", "arch", "cores", "int8_features"}
    assert isinstance(machine["int8_features"], list)
