"""The benchmark names the host it measured: runs on CPUs that differ in model or in native bf16
are not comparable (docs/PERFORMANCE.md)."""
import platform

from engine.benchmark import cpu_description


def test_the_cpu_is_named_with_its_native_bf16_support(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9454 48-Core Processor\n"
                    "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n")
    assert cpu_description(info) == \
        f"AMD EPYC 9454 48-Core Processor, {platform.machine()}, bf16: avx512_bf16"
    info.write_text("model name\t: Old Xeon\nflags\t\t: fpu sse2 avx2\n")
    assert cpu_description(info) == f"Old Xeon, {platform.machine()}, bf16: emulated"
    assert cpu_description(tmp_path / "absent").endswith("bf16: emulated")
