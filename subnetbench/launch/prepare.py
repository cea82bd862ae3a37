"""What ``subnetbench run`` checks and writes before its first run. Every refusal comes first (the
stored results it would stop on, the device's recipe options, the data sets), so that a refused
command writes nothing; then the results folder is checked, what killed writers left there removed,
and the command's plan recorded (:mod:`subnetbench.plans`)."""
from __future__ import annotations

import dataclasses
import errno
import shutil
from pathlib import Path
from typing import Any

from subnetbench import plans
from subnetbench.benchmark.data import default_data_dir, load_raw
from subnetbench.benchmark.results import prepare_results_dir
from subnetbench.benchmark.stored_result import Verdict, judge
from subnetbench.benchmark.training import check_recipe_device
from subnetbench.console import one_paragraph
from subnetbench.errors import FileFault, SubnetbenchError
from subnetbench.files import check_writable_directory, remove_stale_temporaries
from subnetbench.launch.base import Executor
from subnetbench.launch.options import RunOptions, RunSettings
from subnetbench.layout import ResultsLayout

MAX_LISTED_FILES = 5  # files named in one error paragraph; the rest are counted


def check_stored_results(configs: list, results_dir: Path, force: bool) -> None:
    """Refuse, before anything is written, a command whose planned runs include a result file that
    would stop it halfway: one of a newer format version, one that cannot be read, or (unless
    ``force``) one of other options than now. A damaged file is no reason (its run moves it aside),
    nor a results path under a file (checked once, later)."""
    problems: list[SubnetbenchError] = []
    layout = ResultsLayout(results_dir)
    for config in configs:
        try:
            decision = judge(config, layout, force=force)
        except FileFault as error:
            if error.errno not in (errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP):
                problems.append(error)
            continue
        if decision.verdict is Verdict.REFUSE:
            problems.append(decision.error)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        listed = "; ".join(f"({i}) {one_paragraph(p)}"
                           for i, p in enumerate(problems[:MAX_LISTED_FILES], 1))
        more = len(problems) - MAX_LISTED_FILES
        listed += f"; and {more} more like these" if more > 0 else ""
        raise SubnetbenchError(
            f"{len(problems)} result files of the planned runs cannot be used, so no run was "
            f"started: {listed}. Fix or move them away (a newer-format file needs the newer "
            "subnetbench: pip install -U subnetbench), or choose another --results directory")


def fetch_data(configs: list, settings: RunSettings) -> RunSettings:
    """Every data set the runs need, found here (downloaded once, if missing and allowed) before
    anything is written and before workers or jobs start: they then only read it, from the same
    absolute folder. The folders this call created for a download that failed are removed."""
    data_dir = Path(settings.data_dir) if settings.data_dir else default_data_dir()
    created = _first_missing_folder(data_dir.absolute())
    try:
        for dataset in sorted({config.spec.dataset for config in configs}):
            load_raw(dataset, data_dir, settings.download)
    except BaseException:
        if created is not None and created.is_dir():
            shutil.rmtree(created, ignore_errors=True)
        raise
    return dataclasses.replace(settings, data_dir=str(data_dir.resolve()), download=False)


def _first_missing_folder(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None: ``path`` exists)."""
    missing = None
    while not path.exists() and path != path.parent:
        missing, path = path, path.parent
    return missing


def prepare(options: RunOptions, configs: list, executor: Executor,
            settings: RunSettings) -> tuple[RunSettings, dict[str, Any]]:
    """Refusals, then the first writes (see the module's docstring). Returns the runs' settings and
    the command's plan entry."""
    check_stored_results(configs, Path(options.results), options.force)
    if executor.local or executor.device == "cpu":  # a job's "auto" is the job's to find
        for config in configs:
            check_recipe_device(config.recipe, executor.device)
    settings = fetch_data(configs, settings)
    if options.report:  # found out now, not after hours of runs
        check_writable_directory(options.report, "report directory")
    prepare_results_dir(Path(options.results), options.save_subnetwork)
    for folder in ResultsLayout(options.results).folders_with_temporaries():
        remove_stale_temporaries(folder)
    entry = plans.new_command(["subnetbench", *options.argv], executor.name)
    plans.record(options.results, [config.run_id for config in configs], entry)
    return settings, entry
