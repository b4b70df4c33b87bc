"""Building the MIT-BIH beat cache from the WFDB records (cold) vs reading it back (warm)."""

from __future__ import annotations

import tempfile

from ecgfusion.benchmarks.common import BenchResult, measure

TINY_RECORDS = ["100", "101"]


def run(tiny: bool = False, data_root: str | None = None) -> BenchResult:
    from ecgfusion.data.cache import prepare_beats

    records = TINY_RECORDS if tiny else None
    cold_repeats, warm_repeats = (1, 2) if tiny else (2, 5)
    result = BenchResult(
        "prepare",
        "MIT-BIH beat cache: build from the records (cold) vs read (warm)",
        tiny,
        ["step", "records", "beats", "seconds", "beats/s", "spread"],
        params={"records": records or "all", "cold_repeats": cold_repeats,
                "warm_repeats": warm_repeats},
    )
    with tempfile.TemporaryDirectory(prefix="ecgfusion-bench-") as cache:
        state: dict = {}

        def cold() -> None:
            state["beats"], state["path"], _ = prepare_beats(
                "mitdb", "kachuee", records, data_root, cache, force=True
            )

        def warm() -> None:
            _, _, reused = prepare_beats("mitdb", "kachuee", records, data_root, cache)
            if not reused:
                raise RuntimeError("the warm run rebuilt the cache instead of reading it")

        timings = {"cold (force=True)": measure(cold, cold_repeats, warmup=0),
                   "warm (from the cache)": measure(warm, warm_repeats, warmup=1)}
        size = state["path"].stat().st_size
    n = len(state["beats"])
    n_records = len(set(state["beats"].record))
    for step, timing in timings.items():
        result.rows.append({"step": step, "records": n_records, "beats": n,
                            "seconds": timing.median, "beats/s": n / timing.median,
                            "spread": timing.spread})
    result.ratios["warm vs cold"] = (
        timings["cold (force=True)"].median / timings["warm (from the cache)"].median
    )
    result.params["cache_megabytes"] = round(size / 2**20, 2)
    result.notes.append("cold = read every WFDB record and its annotations, resample, segment, "
                        "write the Parquet cache (into a temporary cache dir)")
    return result
