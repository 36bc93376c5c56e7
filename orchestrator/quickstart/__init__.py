"""`lora-pipeline quickstart`: `lora-pipeline run` on a generated toy project (film, references, profile).

>>> from orchestrator.quickstart import QuickstartOptions, run_quickstart
>>> result = run_quickstart(QuickstartOptions(out=Path("quickstart_out")))   # doctest: +SKIP
>>> [(stage.name, round(stage.seconds)) for stage in result.stages]          # doctest: +SKIP
"""

from orchestrator.quickstart.chain import QuickstartResult, StageTiming, run_quickstart
from orchestrator.quickstart.state import QuickstartFailed, QuickstartOptions, QuickstartState, Step
from orchestrator.quickstart.steps import STEPS

__all__ = [
    "STEPS",
    "QuickstartFailed",
    "QuickstartOptions",
    "QuickstartResult",
    "QuickstartState",
    "StageTiming",
    "Step",
    "run_quickstart",
]
