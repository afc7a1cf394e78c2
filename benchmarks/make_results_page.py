"""Regenerate ``benchmarks/README.md`` from the JSON records in ``benchmarks/results/`` only.

Every figure on the page is read from a record that a benchmark script wrote when it
measured it; nothing is typed in by hand, and the page says, for every row, the command that
produced it. Rendering is deterministic (records sorted, fixed number formats, no "generated
at" time), so ``--check`` can fail CI when the committed page is stale.

Tables, each only when it has rows:

- **time to accuracy** (``time_to_accuracy-*.json``, `time_to_accuracy.py`): method, device,
  epochs, minutes, final weighted k-NN, linear probe -- GPU runs only; without one the
  section says so and how to measure;
- **speed-up over the seeds' pipeline** (``seed_pipeline-*.json``, ``time_to_accuracy.py
  --seed-pipeline``): seconds per epoch of both pipelines on the same GPU and their ratio;
- **augmentation throughput** (``augment_throughput-*.json``), **grading time**
  (``grade_time-*.json``) and **checkpoint evaluation** (``checkpoint_eval-*.json``), written
  by other scripts; these may be CPU measurements and are shown whatever the device.

- **recipes** (`helpers.recipes`: this bundle's settings) and **what to expect**
  (`helpers.recipes.PUBLIC_RESULTS`: published results of similar recipes, with their sources;
  not measurements of this bundle);
- **GPU session** (``gpu_session-*.json``, `gpu_session.py`): device, driver, matrix-product
  throughput, CUDA-only tests, and seconds per epoch of each method in each precision path;
- **training overheads** (``train_overheads-*.json``, `train_overheads.py`): optimiser step
  implementations and checkpoint writes.

Smoke records (``"smoke": true``) never appear.

Usage (from the project root)::

    python benchmarks/make_results_page.py            # rewrite benchmarks/README.md
    python benchmarks/make_results_page.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:  # run as a script: make `helpers` importable
    sys.path.insert(0, str(PROJECT_ROOT))
DEFAULT_RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
DEFAULT_OUTPUT = PROJECT_ROOT / "benchmarks" / "README.md"
METHOD_ORDER = {"simclr": 0, "byol": 1, "barlow": 2}
METHOD_NAMES = {"simclr": "SimCLR", "byol": "BYOL", "barlow": "Barlow Twins"}
#: Scalar fields never shown as columns of the generic tables (long, or the same everywhere).
_GENERIC_SKIP = {
    "benchmark",
    "schema_version",
    "command",
    "date",
    "smoke",
    "unit",
    "device_slug",
    "python_version",
    "torchvision_version",
    "cpu_model",
    "torch_threads",
    "cuda_version",
    "cudnn_version",
    "time_utc",
    "measured",
}
_GENERIC_MAX_COLUMNS = 14


class RecordError(ValueError):
    """A file in the results folder that is not a readable benchmark record."""


# ======================================================================================
# Reading
# ======================================================================================
def load_records(results_dir: str | Path = DEFAULT_RESULTS_DIR) -> list[tuple[str, dict[str, Any]]]:
    """All ``*.json`` records of `results_dir` as (file name, record), sorted by file name.

    Raises:
        RecordError: a file is not valid JSON or not a JSON object (names the file).
    """
    results_dir = Path(results_dir)
    records = []
    if not results_dir.is_dir():
        return records
    for path in sorted(results_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RecordError(f"{path} is not a readable JSON record ({error}); fix or delete it, then rerun") from None
        if not isinstance(record, dict):
            raise RecordError(f"{path} holds a JSON {type(record).__name__}, not a record object; fix or delete it")
        records.append((path.name, record))
    return records


def _kind(name: str, record: Mapping[str, Any]) -> str:
    benchmark = record.get("benchmark")
    if isinstance(benchmark, str) and benchmark:
        return benchmark
    return name.split("-", 1)[0].removesuffix(".json")


def _is_gpu(record: Mapping[str, Any]) -> bool:
    return record.get("device") == "cuda"


# ======================================================================================
# Formatting
# ======================================================================================
def _pct(value: Any) -> str:
    return "–" if not isinstance(value, (int, float)) else f"{100 * value:.1f} %"


def _num(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _reproduce(entries: Sequence[tuple[str, Mapping[str, Any]]], note: str = "") -> list[str]:
    lines = ["", "To reproduce" + (f" ({note})" if note else "") + ":", ""]
    for number, (name, record) in enumerate(entries, 1):
        command = record.get("command") or "(no command recorded)"
        lines.append(f"{number}. `{command}`  — record `results/{name}`")
    return lines


def _method_key(item: tuple[str, Mapping[str, Any]]) -> tuple:
    name, record = item
    return (
        METHOD_ORDER.get(record.get("method"), 99),
        str(record.get("device_name", "")),
        record.get("epochs") if isinstance(record.get("epochs"), int) else 0,
        name,
    )


# ======================================================================================
# Sections
# ======================================================================================
MEASURE_ON_GPU = """\
How to measure: on a lent GPU machine, run the prepared session `benchmarks/gpu_session.py`
first; [DEVELOPERS.md](../DEVELOPERS.md) gives the device tool's command lines. It measures
SimCLR to the end of its recipe, every precision path and the seeds' pipeline within about
15 minutes of device time and writes the records this page is made from. On any other
machine with a CUDA GPU, from the project root (each command stops cleanly within
`--max-minutes` and continues where it stopped when run again, so repeat it until it prints
`STATUS: finished`):

```
cp -r ../shared/data/cifar10-jpeg .cifar        # or any CIFAR-10 copy, see data/README.md
python benchmarks/gpu_session.py --source .cifar --out gpu-records --minutes 60
cp gpu-records/*.json benchmarks/results/
python benchmarks/time_to_accuracy.py --method simclr --source .cifar --max-minutes 9
python benchmarks/time_to_accuracy.py --method byol   --source .cifar --max-minutes 9
python benchmarks/time_to_accuracy.py --method barlow --source .cifar --max-minutes 9
python benchmarks/time_to_accuracy.py --method simclr --source .cifar --seed-pipeline --max-minutes 9
python benchmarks/make_results_page.py
```"""


def _time_to_accuracy_section(records: list[tuple[str, dict]]) -> list[str]:
    lines = [
        "## Time to accuracy",
        "",
        "Pre-training with `helpers.train.fit` and the recipes of `helpers.recipes`, the models and steps",
        "taken from `solutions/ssl_methods.ipynb`; then a linear probe on the frozen encoder.",
        "*Minutes* is the whole wall-clock time (start-up, data loading, training, k-NN monitor,",
        "final linear probe), summed over the resumed runs. *k-NN* is the weighted k-NN monitor",
        "(k = 200, InstDisc) after the last epoch; *linear probe* is an L2-regularised logistic",
        "regression on frozen features fitted with L-BFGS (`benchmarks/linear_probe.py`). Both are",
        "test accuracies on the 10,000 CIFAR-10 test images. GPU runs only.",
        "",
    ]
    rows_src = sorted(((n, r) for n, r in records if _is_gpu(r)), key=_method_key)
    if not rows_src:
        return lines + ["**No GPU record yet.** Nothing has been measured on a GPU for this page.", "", MEASURE_ON_GPU]
    rows = []
    for _, r in rows_src:
        knn = r.get("knn") if isinstance(r.get("knn"), dict) else {}
        probe = r.get("linear_probe") if isinstance(r.get("linear_probe"), dict) else {}
        method = METHOD_NAMES.get(r.get("method"), str(r.get("method")))
        if r.get("recipe_overrides") and set(r["recipe_overrides"]) - {"epochs"}:
            changed = ", ".join(f"{k}={v}" for k, v in sorted(r["recipe_overrides"].items()) if k != "epochs")
            method = f"{method} ({changed})"
        rows.append(
            [
                method,
                r.get("device_name", "–"),
                _num(r.get("epochs")),
                _num(r.get("minutes")),
                _num(r.get("seconds_per_epoch_steady"), 2),
                _pct(knn.get("final")),
                _pct(probe.get("accuracy")),
                _num(len(r.get("sessions", [])) or None, 0),
            ]
        )
    lines += _table(["method", "device", "epochs", "minutes", "s / epoch", "k-NN", "linear probe", "runs"], rows)
    notes = [(n, r) for n, r in rows_src if r.get("notes")]
    if notes:
        lines += ["", "Notes:"] + [f"- `{n}`: " + "; ".join(map(str, r["notes"])) for n, r in notes]
    lines += _reproduce(rows_src, "repeat each command until it prints `STATUS: finished`")
    return lines


def _seed_section(records: list[tuple[str, dict]]) -> list[str]:
    rows_src = sorted(((n, r) for n, r in records if _is_gpu(r)), key=_method_key)
    lines = [
        "## Speed-up over the seeds' pipeline",
        "",
        "Seconds per epoch of the seeds' original pipeline (per-image torchvision augmentation in 10",
        "DataLoader workers, float32, AdamW, a scikit-learn k-NN after every epoch;",
        "`benchmarks/seed_pipeline.py`) beside the fast path's (`fit`: the uint8 split on the GPU,",
        "batched augmentation, mixed precision, the weighted k-NN monitor on the GPU after every",
        "epoch), measured one after the other in the same run on the same GPU. Steady state: the",
        "mean over the timed epochs after the first.",
        "",
    ]
    if not rows_src:
        return lines + [
            "**No GPU record yet.** Measure with `python benchmarks/time_to_accuracy.py --method simclr "
            "--source .cifar --seed-pipeline` on a GPU."
        ]
    rows = []
    for _, r in rows_src:
        seed = r.get("seed_pipeline") if isinstance(r.get("seed_pipeline"), dict) else {}
        fast = r.get("fast_path") if isinstance(r.get("fast_path"), dict) else {}
        speedup, train_speedup = r.get("speedup"), r.get("speedup_train_only")
        rows.append(
            [
                METHOD_NAMES.get(r.get("method"), str(r.get("method"))),
                r.get("device_name", "–"),
                _num(len(seed.get("epochs", [])) or None, 0),
                _num(seed.get("seconds_per_epoch"), 2),
                _num(fast.get("seconds_per_epoch"), 2),
                "–" if speedup is None else f"{speedup:.1f}×",
                _num(seed.get("train_seconds_per_epoch"), 2),
                _num(fast.get("train_seconds_per_epoch"), 2),
                "–" if train_speedup is None else f"{train_speedup:.1f}×",
            ]
        )
    lines += _table(
        [
            "method",
            "device",
            "epochs timed",
            "seed s / epoch",
            "fast s / epoch",
            "speed-up",
            "seed train s",
            "fast train s",
            "train speed-up",
        ],
        rows,
    )
    lines += _reproduce(rows_src)
    return lines


def _recipes_section() -> list[str]:
    """The bundle's recipes and the published results of similar ones (helpers.recipes)."""
    from helpers.recipes import PUBLIC_RESULTS, RECIPES

    lines = [
        "## Recipes and what to expect",
        "",
        "The recipes of `helpers.recipes` that the notebooks and `time_to_accuracy.py` train with",
        "(ResNet-18 with the CIFAR stem, SGD with momentum, linear warmup then cosine):",
        "",
    ]
    rows = []
    for method, recipe in RECIPES.items():
        special = {
            "simclr": lambda r: f"τ = {r.temperature}",
            "byol": lambda r: f"EMA β {r.ema_beta} → 1 (cosine)" if r.ema_cosine else f"EMA β {r.ema_beta}",
            "barlow": lambda r: f"λ = {r.alpha}",
        }[method](recipe)
        rows.append(
            [
                METHOD_NAMES[method],
                _num(recipe.epochs),
                _num(recipe.batch_size),
                f"{recipe.base_lr:g} × batch/256 = {recipe.lr:g}",
                f"{recipe.momentum:g}",
                f"{recipe.weight_decay:g}",
                _num(recipe.warmup_epochs),
                f"512-{recipe.proj_hidden_dim}-{recipe.proj_dim}",
                special,
                _num(recipe.knn_every),
            ]
        )
    lines += _table(
        [
            "method",
            "epochs",
            "batch",
            "lr",
            "momentum",
            "weight decay",
            "warmup epochs",
            "projector",
            "method's own",
            "k-NN every",
        ],
        rows,
    )
    lines += [
        "",
        "**What to expect on a GPU: published results, not measured here.** Until this page has GPU",
        "records of its own, these results of similar recipes on CIFAR-10 (ResNet-18 with the CIFAR",
        "stem) are the reference. Their classifiers differ from ours (k-NN with k = 10 or k = 200 at",
        "the best epoch, linear readouts trained differently), and so do details of their recipes.",
        "",
    ]
    rows = []
    for result in sorted(PUBLIC_RESULTS, key=lambda r: (METHOD_ORDER[r.method], r.epochs, r.source, -r.accuracy)):
        time_text = (
            f"{result.minutes:g} min"
            if result.minutes is not None
            else f"{result.seconds_per_epoch:g} s / epoch"
            if result.seconds_per_epoch is not None
            else "–"
        )
        rows.append(
            [
                METHOD_NAMES[result.method],
                _num(result.epochs),
                _num(result.batch_size),
                result.metric,
                _pct(result.accuracy),
                time_text,
                result.hardware or "not named",
                f"[{result.source}]({result.url})",
                result.differences,
            ]
        )
    lines += _table(
        ["method", "epochs", "batch", "accuracy measured as", "accuracy", "time", "GPU", "source", "differs from ours"],
        rows,
    )
    return lines


def _gpu_session_section(records: list[tuple[str, dict]]) -> list[str]:
    lines = [
        "## GPU session",
        "",
        "`benchmarks/gpu_session.py`, the prepared run on a lent GPU: the device, its matrix-product",
        "throughput (8192³, median of 10), the CUDA-only tests, and each method's step through `fit` on the",
        "full training split for a few epochs in each precision path (the recipes' batch size, fused SGD,",
        "channels_last; no monitor, no checkpoint). *First* is the first epoch (warm-up, and compilation",
        "with compile); *s / epoch* and *images/s* are the last epoch's; *peak* is the most GPU memory",
        "allocated (the uint8 training split included).",
        "",
    ]
    if not records:
        return lines + ["**No GPU session record yet.**"]
    for name, r in sorted(records, key=lambda item: item[0]):
        env = r.get("environment") if isinstance(r.get("environment"), dict) else {}
        smi = env.get("nvidia_smi") if isinstance(env.get("nvidia_smi"), dict) else {}
        matmul = ", ".join(
            f"{m.get('dtype')} {m['tflops']:.0f} TFLOP/s"
            for m in env.get("matmul", [])
            if isinstance(m, dict) and isinstance(m.get("tflops"), (int, float))
        )
        steps = r.get("steps") if isinstance(r.get("steps"), dict) else {}
        tests = steps.get("cuda_tests", {}) if isinstance(steps.get("cuda_tests"), dict) else {}
        counts = tests.get("counts") if isinstance(tests.get("counts"), dict) else {}
        lines += [
            f"**{r.get('device_name', '–')}** (driver {smi.get('driver_version', '–')}, torch "
            f"{r.get('torch_version', '–')}, CUDA {env.get('cuda_version', '–')}); {matmul or 'no matrix product'}.",
            f"CUDA-only tests: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, "
            f"{counts.get('error', 0)} errors, {counts.get('skipped', 0)} skipped. Steps: "
            + ", ".join(
                f"{step} {value.get('status', '–')}" for step, value in steps.items() if isinstance(value, dict)
            )
            + ".",
            "",
        ]
        tta = steps.get("time_to_accuracy") if isinstance(steps.get("time_to_accuracy"), dict) else {}
        seen = [e for e in tta.get("epoch_lines", []) if isinstance(e, dict)]
        if seen and tta.get("status") != "done":  # a finished run has its own record and table row
            knn = [e for e in seen if e.get("knn_percent") is not None]
            lines += [
                f"SimCLR time to accuracy {tta.get('status', '–')}: {len(seen)} epochs of {seen[-1].get('epochs')} "
                f"trained, median {_num(sorted(e['seconds'] for e in seen)[len(seen) // 2], 2)} s per epoch"
                + (f", k-NN {knn[-1]['knn_percent']:.1f} % after epoch {knn[-1]['epoch']}" if knn else "")
                + ".",
                "",
            ]
        rows = []
        for p in r.get("training_paths", []):
            error = p.get("error", "")
            error = error.strip().splitlines()[-1][:120] if isinstance(error, str) and error.strip() else ""
            rows.append(
                [
                    METHOD_NAMES.get(p.get("method"), str(p.get("method"))),
                    p.get("amp", "–"),
                    "on" if p.get("compile") else "off",
                    _num(p.get("batch_size")),
                    _num(p.get("first_epoch_seconds"), 2),
                    _num(p.get("steady_epoch_seconds"), 2),
                    _num(p.get("images_per_second"), 0),
                    "–" if p.get("peak_memory_gib") is None else f"{p['peak_memory_gib']:.2f} GiB",
                    p.get("status", "–") + (f": {error}" if error else ""),
                ]
            )
        if rows:
            lines += _table(
                ["method", "precision", "compile", "batch", "first epoch s", "s / epoch", "images/s", "peak", "status"],
                rows,
            )
        lines += _reproduce([(name, r)], "DEVELOPERS.md has the device tool's command lines")
        lines.append("")
    return lines[:-1]


def _train_overheads_section(records: list[tuple[str, dict]]) -> list[str]:
    lines = [
        "## Training overheads",
        "",
        "`benchmarks/train_overheads.py`: one SGD step (momentum, weight decay) over the parameters of the",
        "solution notebook's SimCLR model in torch's three implementations, and writing `fit`'s training",
        "checkpoint (model, optimiser, history, RNG states; atomic write with fsync) -- what",
        "`checkpoint_minutes` saves for each epoch it does not checkpoint. Medians of the repeats.",
        "",
    ]
    rows = []
    for _, r in sorted(records, key=lambda item: item[0]):
        steps = {s.get("implementation"): s for s in r.get("sgd_step", []) if isinstance(s, dict)}
        ckpt = r.get("checkpoint_write") if isinstance(r.get("checkpoint_write"), dict) else {}

        def ms(name, steps=steps):
            row = steps.get(name, {})
            return _num(row.get("median_ms"), 2) if "median_ms" in row else ("error" if row else "–")

        rows.append(
            [
                r.get("device_name", "–"),
                r.get("torch_version", "–"),
                ms("for-loop"),
                ms("foreach"),
                ms("fused"),
                _num(ckpt.get("median_s"), 3),
                _num(ckpt.get("size_mb"), 1),
                _num(r.get("load_average_1min"), 2),
            ]
        )
    lines += _table(
        [
            "device",
            "torch",
            "SGD for-loop ms",
            "SGD foreach ms",
            "SGD fused ms",
            "checkpoint write s",
            "checkpoint MB",
            "load (1 min)",
        ],
        rows,
    )
    return lines + _reproduce(sorted(records, key=lambda item: item[0]))


def _augment_section(records: list[tuple[str, dict]]) -> list[str]:
    rows_src = sorted(records, key=lambda item: (str(item[1].get("device_name", "")), item[0]))
    rows = [
        [
            r.get("device_name", "–"),
            _num(r.get("batch_size")),
            _num(r.get("workers")),
            _num(r.get("per_image_images_per_s"), 0),
            _num(r.get("batched_images_per_s"), 0),
            "–" if not isinstance(r.get("ratio"), (int, float)) else f"{r['ratio']:.2f}×",
        ]
        for _, r in rows_src
    ]
    lines = [
        "## Augmentation throughput",
        "",
        "Source images per second turned into two augmented views: the seeds' per-image torchvision",
        "pipeline in DataLoader workers vs `helpers.augment.BatchTwoViewAugment` on the device",
        "(`benchmarks/augment_throughput.py`).",
        "",
    ]
    lines += _table(["device", "batch", "workers", "per-image (images/s)", "batched (images/s)", "ratio"], rows)
    return lines + _reproduce(rows_src)


def _grade_time_section(records: list[tuple[str, dict]]) -> list[str]:
    rows_src = sorted(records, key=lambda item: item[0])
    rows = []
    for _, record in rows_src:
        machine = record.get("machine", {})
        device = f"{machine.get('cpu', '–')} ({machine.get('logical_cpus', '?')} CPUs)"
        for assignment, result in sorted(record.get("results", {}).items()):
            runs = result.get("runs", [])
            loads = [run["load_1min_before"] for run in runs if isinstance(run.get("load_1min_before"), (int, float))]
            rows.append(
                [
                    assignment,
                    device,
                    _num(len(runs)),
                    _num(result.get("median_s"), 1),
                    _num(result.get("warm_median_s"), 1),
                    _num(record.get("target_s"), 0),
                    "yes" if result.get("all_full_score") else "no",
                    f"{min(loads):.1f}–{max(loads):.1f}" if loads else "–",
                ]
            )
    lines = [
        "## Grading time",
        "",
        "Wall-clock seconds of `python -m autograder grade` on the reference submission, unit tests only",
        "(`benchmarks/grade_time.py`). *Fresh* is the median of new processes (interpreter, torch",
        "import, sandbox start, grading); *warm* is the median of repeated gradings in one process",
        "(how `grade-all` runs). The 1-minute load average shows how busy the machine was.",
        "",
    ]
    lines += _table(
        ["assignment", "machine", "runs", "fresh median (s)", "warm median (s)", "target (s)", "full score", "load"],
        rows,
    )
    return lines + _reproduce(rows_src)


def _hostile_section(records: list[tuple[str, dict]]) -> list[str]:
    rows = []
    for _, record in records:
        machine = record.get("machine", {})
        device = f"{machine.get('cpu', '–')} ({machine.get('cpus', '?')} CPUs)"
        for name, run in record.get("runs", {}).items():
            ratio = record.get("ratios", {}).get(name, {})
            rows.append(
                [
                    name,
                    device,
                    run.get("sandbox", "–"),
                    _num(run.get("wall_s"), 1),
                    _num(ratio.get("wall", 1.0), 2),
                    _num(run.get("student_code_s"), 1),
                    _num(run.get("grader_peak_rss_mb"), 0),
                    _num(ratio.get("grader_peak_rss", 1.0), 2),
                    _num(run.get("peak_total_pss_mb"), 0),
                    _num(run.get("score"), 0),
                    _num(record.get("budget_s"), 0),
                ]
            )
    lines = [
        "## Hostile submissions",
        "",
        "`python -m autograder grade --unit-only` (a fresh process each) on the `ssl_methods` reference and on",
        "two attacks built from it (`benchmarks/hostile_grading.py`): *slowest*, every graded call sleeping",
        "just under the per-call limit (the submission's time budget ends it), and *largest*, every graded",
        "call returning just under the 32 MB cap on one answer and printing 4 MB. *Grader RSS* is the",
        "grading process's own peak; *total PSS* all of its processes together.",
        "",
    ]
    lines += _table(
        [
            "submission",
            "machine",
            "sandbox",
            "wall (s)",
            "× reference",
            "student code (s)",
            "grader RSS (MB)",
            "× reference",
            "total PSS (MB)",
            "score",
            "budget (s)",
        ],
        rows,
    )
    return lines + _reproduce(records)


def _checkpoint_section(records: list[tuple[str, dict]]) -> list[str]:
    rows_src = sorted(records, key=lambda item: item[0])
    rows = []
    for _, record in rows_src:
        build = record.get("torch") or record.get("machine", {}).get("torch", "?")
        cuda = record.get("torch_cuda_build", record.get("machine", {}).get("torch_cuda_build"))
        build = f"{build} ({'CUDA ' + str(cuda) if cuda else 'CPU'} build)"
        baseline = record.get("import_baseline", {}).get("peak_rss_mb")
        targets = record.get("targets", {})
        for summary in record.get("summary", []):
            time_ok = summary.get("meets_time_target")
            rows.append(
                [
                    build,
                    _num(summary.get("threads"), 0),
                    _num(summary.get("runs"), 0),
                    f"{_num(summary.get('wall_s_median'), 1)} ({_num(summary.get('wall_s_min'), 1)}–"
                    f"{_num(summary.get('wall_s_max'), 1)})",
                    _num(summary.get("evaluation_s_median"), 1),
                    _num(summary.get("peak_rss_mb_max"), 0),
                    _num(baseline, 0),
                    "–" if time_ok is None else ("yes" if time_ok else "no"),
                    "yes" if summary.get("meets_memory_target") else "no",
                ]
            )
    lines = [
        "## Checkpoint evaluation",
        "",
        "Grading one `simclr_lin_best.pt` on the full CIFAR-10 test split (10,000 images) on the CPU, each",
        "run a fresh `python -m autograder.checkpoint_grading grade` process (`benchmarks/checkpoint_eval.py`).",
        "Wall time is the median of the runs (range in brackets); peak RSS is the largest of the grading",
        "process's own high-water mark (VmHWM); *import alone* is a process that only imports the grader.",
        f"Targets: under {_num(targets.get('wall_s_with_2_threads', 90), 0)} s with 2 threads, under "
        f"{_num(targets.get('peak_rss_mb', 700), 0)} MB. A CPU-build row ran the grader under another virtual",
        "environment (`--python`; the script's docstring says how to make one).",
        "",
    ]
    lines += _table(
        [
            "torch",
            "threads",
            "runs",
            "wall s, median (range)",
            "evaluation s",
            "peak RSS MB",
            "import alone MB",
            "time target",
            "memory target",
        ],
        rows or [["–"] * 9],
    )
    return lines + _reproduce(rows_src)


def _scalars(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in mapping.items()
        if (isinstance(v, (int, float, str, bool)) or v is None) and k not in _GENERIC_SKIP
    }


def _generic_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A record's scalar fields; one row per item when it holds a list of measurements (e.g. ``runs``)."""
    top = _scalars(record)
    for value in record.values():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return [{**top, **_scalars(item)} for item in value]
    return [top]


def _generic_section(title: str, description: str, records: list[tuple[str, dict]]) -> list[str]:
    rows_src = sorted(records, key=lambda item: item[0])
    flat = [row for _, record in rows_src for row in _generic_rows(record)]
    columns: list[str] = []
    for row in flat:
        for key in row:
            if key not in columns and len(columns) < _GENERIC_MAX_COLUMNS:
                columns.append(key)
    rows = [
        [row.get(key) if isinstance(row.get(key), str) else _num(row.get(key), 2) for key in columns] for row in flat
    ]
    lines = [f"## {title}", "", description, ""]
    lines += _table([c.replace("_", " ") for c in columns] or ["record"], rows or [["–"]])
    return lines + _reproduce(rows_src)


# ======================================================================================
# The page
# ======================================================================================
HEADER = """\
# Benchmarks

<!-- Generated by benchmarks/make_results_page.py from benchmarks/results/*.json. Do not edit by hand:
     run `python benchmarks/make_results_page.py` after adding a record. -->

Every figure on this page is read from a JSON record in [`results/`](results/) that a benchmark
script wrote when it measured it; each row says which command produced it. Records of smoke
runs are never shown, and the training tables show GPU runs only."""


def render_page(records: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The Markdown page for `records` ((file name, record) pairs; order does not matter)."""
    records = sorted(((name, dict(record)) for name, record in records), key=lambda item: item[0])
    real = [(n, r) for n, r in records if not r.get("smoke")]
    groups: dict[str, list[tuple[str, dict]]] = {}
    for name, record in real:
        groups.setdefault(_kind(name, record), []).append((name, record))
    lines = [HEADER, ""]
    lines += _time_to_accuracy_section(groups.pop("time_to_accuracy", []))
    lines += [""] + _recipes_section()
    lines += [""] + _gpu_session_section(groups.pop("gpu_session", []))
    lines += [""] + _seed_section(groups.pop("seed_pipeline", []))
    if groups.get("train_overheads"):
        lines += [""] + _train_overheads_section(groups.pop("train_overheads"))
    if groups.get("augment_throughput"):
        lines += [""] + _augment_section(groups.pop("augment_throughput"))
    if groups.get("grade_time"):
        lines += [""] + _grade_time_section(groups.pop("grade_time"))
    if groups.get("checkpoint_eval"):
        lines += [""] + _checkpoint_section(groups.pop("checkpoint_eval"))
    if groups.get("hostile_grading"):
        lines += [""] + _hostile_section(groups.pop("hostile_grading"))
    for kind in sorted(groups):  # any other benchmark that left records here
        lines += [""] + _generic_section(kind.replace("_", " ").capitalize(), f"Records `{kind}-*.json`.", groups[kind])
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR), help="folder of JSON records")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="the page to write")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the page is out of date")
    args = parser.parse_args(argv)
    try:
        page = render_page(load_records(args.results_dir))
    except RecordError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output = Path(args.output)
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else None
        if current != page:
            print(f"{output} is out of date; run `python benchmarks/make_results_page.py`", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    print(f"wrote {output} from {args.results_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
