"""NVIDIA GPUs through NVML (``nvidia-ml-py`` provides ``import pynvml``).

A machine without an NVIDIA driver is a normal answer (``available=False`` with the reason),
never a crash: doctor, pre-flight and monitor all run on CPU-only machines too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_mib: int
    free_mib: int
    utilization_percent: int | None
    temperature_c: int | None
    own_mib: int = 0  # held by this process (the search's own evaluator or CUDA context), not by others

    @property
    def own_gib(self) -> float:
        return self.own_mib / 1024

    @property
    def free_gib(self) -> float:
        return self.free_mib / 1024


@dataclass(frozen=True)
class GpuReport:
    available: bool
    reason: str  # why there are no GPUs, or the driver version when there are
    gpus: tuple[GpuInfo, ...] = ()


def query_gpus() -> GpuReport:
    try:
        import pynvml
    except ImportError:
        return GpuReport(False, "nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return GpuReport(False, f"no NVIDIA driver found ({error})")
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append(GpuInfo(
                index=index,
                name=name.decode() if isinstance(name, bytes) else str(name),
                total_mib=int(memory.total // 2**20),
                free_mib=int(memory.free // 2**20),
                utilization_percent=_optional(lambda h=handle: pynvml.nvmlDeviceGetUtilizationRates(h).gpu),
                temperature_c=_optional(
                    lambda h=handle: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)),
                own_mib=_optional(lambda h=handle: _memory_of_this_process(pynvml, h)) or 0,
            ))
        return GpuReport(True, f"driver {driver}", tuple(gpus))
    except pynvml.NVMLError as error:
        return GpuReport(False, f"NVML error: {error}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _memory_of_this_process(pynvml, handle) -> int:  # type: ignore[no-untyped-def]
    processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    used = [p.usedGpuMemory for p in processes if p.pid == os.getpid() and p.usedGpuMemory is not None]
    return int(sum(used) // 2**20)


def _optional(read) -> int | None:
    try:
        return int(read())
    except Exception:  # a GPU that does not report one metric still reports the others
        return None
