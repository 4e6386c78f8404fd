"""The dashboard's copy of the compare metrics (frontend/src/api/research.ts) is the server's list."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from aaiti.ml.schemas import CompareMetric

RESEARCH_TS = Path(__file__).resolve().parents[2] / "frontend" / "src" / "api" / "research.ts"


def test_dashboard_compare_metrics_match_the_server() -> None:
    block = re.search(r"MODEL_COMPARE_METRICS = \[(.*?)\] as const", RESEARCH_TS.read_text(), flags=re.S)
    assert block, "MODEL_COMPARE_METRICS not found in research.ts"
    dashboard = re.findall(r'"([a-z_0-9]+)"', block.group(1))
    assert dashboard[0] == "rmse", "the dashboard ranks by RMSE first, the server's default"
    assert sorted(dashboard) == sorted(get_args(CompareMetric))
