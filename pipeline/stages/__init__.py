"""The stage registry: name -> StageSpec. A stage is listed here only once it is implemented."""
from __future__ import annotations

from pipeline.core.stage import StageSpec
from pipeline.stages import dedup_exact, dedup_fuzzy, extract, quality
from pipeline.stages import filter as filter_stage

STAGES: dict[str, StageSpec] = {
    "extract": extract.SPEC,
    "filter": filter_stage.SPEC,
    "dedup_fuzzy": dedup_fuzzy.SPEC,
    "dedup_exact": dedup_exact.SPEC,
    "quality": quality.SPEC,
}
