"""Runs through submitit (``run --executor slurm`` / ``submitit-local``): the options, the jobs a plan
becomes, the sbatch script a submission writes (with stand-ins for SLURM's commands), and real jobs
of submitit's local executor, whose results equal inline runs."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from submitit.core.utils import UncompletedJobError
from submitit.local.local import LocalJobEnvironment

from subnetbench import cli, locks, status
from subnetbench.benchmark import runner
from subnetbench.benchmark.config import make_config
from subnetbench.benchmark.runner import execute
from subnetbench.launch import cluster, job
from subnetbench.launch.options import ClusterOptions, RunSettings
from subnetbench.layout import ResultsLayout
from subnetbench.methods.base import OptionError
from tests.helpers import REPO, child_env, interruptible, single_torch_thread  # noqa: F401

OUTCOME_KEYS = ("metrics", "curves", "layer_kept_fraction", "keep_probabilities")
SBATCH = """#!/bin/sh
# a stand-in for sbatch: keeps the script it is given and answers as sbatch does
cp "$1" "$(dirname "$0")/submitted.sh"
echo "Submitted batch job 4242"
"""


def outcome(result: dict) -> dict:
    return json.loads(json.dumps({key: result[key] for key in OUTCOME_KEYS}))


def stored(results_dir, config) -> dict:
    return json.loads(ResultsLayout(results_dir).run_file(config.run_id).read_text())


@pytest.mark.parametrize("text, minutes", [
    ("720", 720), ("12:00:00", 720), ("1-00:00:00", 1440), ("90:30", 91), ("2-12", 3600),
    ("1-2:30", 1590), ("0:0:1", 1)])
def test_slurm_times_are_read_as_sbatch_reads_them(text, minutes):
    assert cluster.parse_minutes(text) == minutes


@pytest.mark.parametrize("text", ["12h", "", "0", "1:2:3:4", "-5"])
def test_a_bad_slurm_time_is_refused(text):
    with pytest.raises(OptionError, match="--slurm-time"):
        cluster.parse_minutes(text)


@pytest.mark.parametrize("sizes, runs_per_job, jobs", [
    ([1, 1, 1], 1, [[1], [1], [1]]),
    ([1, 1, 1], 2, [[1, 1], [1]]),
    ([3, 3], 1, [[3], [3]]),  # a seed batch is never split
    ([2, 1, 1, 2], 3, [[2, 1], [1, 2]]),
    ([1] * 5, 10, [[1] * 5]),
])
def test_runs_are_packed_into_jobs_in_order(sizes, runs_per_job, jobs):
    units = [[f"u{i}"] * size for i, size in enumerate(sizes)]
    packed = cluster.pack_jobs(units, runs_per_job)
    assert [[len(unit) for unit in job] for job in packed] == jobs
    assert [unit for job in packed for unit in job] == units


RUN = ["run", "digits-conv2", "--method", "dense", "--set", "epochs=1", "--device", "cpu"]


@pytest.mark.parametrize("extra, named", [
    (["--executor", "slurm"], "needs --slurm-time"),
    (["--slurm-partition", "gpu"], "--slurm-partition is an option of --executor slurm"),
    (["--no-wait"], "--no-wait is an option of --executor"),
    (["--executor", "submitit-local", "--slurm-partition", "gpu"], "takes only --slurm-time"),
    (["--executor", "slurm", "--slurm-time", "12h"], "'12h'"),
    (["--executor", "slurm", "--slurm-time", "60", "--slurm-mem", "lots"], "'lots'"),
    (["--executor", "slurm", "--slurm-time", "60", "--slurm-param", "mail-type"], "'mail-type'"),
    (["--executor", "slurm", "--slurm-time", "60", "--runs-per-job", "0"], "--runs-per-job 0"),
    (["--executor", "submitit-local", "--jobs", "2"], "--jobs 2"),
    (["--executor", "slurm", "--slurm-time", "60"], "srun is not on its PATH"),
])
def test_bad_cluster_options_are_one_paragraph_and_write_nothing(tmp_path, capsys, monkeypatch, extra,
                                                                named):
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    assert cli.main(RUN + ["--results", str(tmp_path / "r")] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("subnetbench: error: ") and "\n" not in err and named in err
    assert not (tmp_path / "r").exists()


def test_without_submitit_the_error_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    assert cli.main(RUN + ["--results", str(tmp_path), "--executor", "submitit-local"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pip install 'subnetbench[cluster]'" in err


def test_a_slurm_submission_is_one_job_array_with_the_options(tmp_path, capsys, monkeypatch):
    """SLURM's sbatch and srun replaced by stand-ins: the script submitit writes, the job ids, the
    plan and status; no job runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    results = tmp_path / "results"
    argv = ["run", "digits-conv2", "--method", "aslp", "--method", "supermask", "--seeds", "0,1,2",
            "--results", str(results), "--executor", "slurm", "--seed-batch", "3",
            "--slurm-partition", "gpu", "--slurm-time", "1-12:00:00", "--slurm-gpus-per-task", "1",
            "--slurm-cpus-per-task", "4", "--slurm-mem", "16G", "--slurm-array-parallelism", "8",
            "--slurm-account", "proj", "--slurm-qos", "normal", "--slurm-constraint", "a100",
            "--slurm-setup", "module load cuda/12.1", "--slurm-param", "mail-type=END", "--no-wait"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "submitted 2 job(s) for 6 run(s)" in out and "4242_0, 4242_1" in out
    assert f"subnetbench status {results}" in out
    script = (bin_dir / "submitted.sh").read_text()
    # sbatch refuses --gpus-per-task without a task count: one node, one task on it
    for line in ("--partition=gpu", "--time=2160", "--gpus-per-task=1", "--cpus-per-task=4",
                 "--nodes=1", "--ntasks-per-node=1",
                 "--mem=16G", "--array=0-1%2", "--account=proj", "--qos=normal", "--constraint=a100",
                 "--mail-type=END", "--signal=USR2@90", f"--output={results / 'submitit'}"):
        assert f"#SBATCH {line}" in script
    assert "module load cuda/12.1" in script
    found = status.collect(results)
    assert found["counts"]["missing"] == 6
    (submission,) = found["submissions"]
    assert submission["job_ids"] == ["4242_0", "4242_1"] and submission["executor"] == "slurm"


@pytest.mark.parametrize("extra, jobs", [(["--runs-per-job", "1"], 2), (["--seed-batch", "2"], 1)])
def test_submitit_local_jobs_give_the_results_of_inline_runs(tmp_path, capsys, extra, jobs):
    """The very job path of a cluster, through submitit's local executor: two seeds of aslp, as two
    jobs or as one seed batch in one job; the metrics and curves equal inline runs'."""
    common = ["run", "digits-conv2", "--method", "aslp", "--seeds", "0,1", "--set", "epochs=2",
              "--device", "cpu", "--no-progress"]
    assert cli.main(common + ["--results", str(tmp_path / "inline")]) == 0
    capsys.readouterr()
    assert cli.main(common + ["--results", str(tmp_path / "jobs"), "--executor", "submitit-local",
                              *extra]) == 0
    out = capsys.readouterr().out
    assert f"submitted {jobs} job(s) for 2 run(s)" in out and out.count(": done,") == 2
    for seed in (0, 1):
        config = make_config("digits-conv2", "aslp", seed, {"epochs": "2"})
        assert outcome(stored(tmp_path / "jobs", config)) == outcome(stored(tmp_path / "inline", config))
    assert status.collect(tmp_path / "jobs")["counts"]["completed"] == 2


def test_no_wait_returns_at_once_and_status_follows_the_jobs(tmp_path, capsys):
    results = tmp_path / "results"
    assert cli.main(RUN + ["--results", str(results), "--executor", "submitit-local", "--no-wait"]) == 0
    assert "follow them with: subnetbench status" in capsys.readouterr().out
    deadline = time.monotonic() + 120
    while status.collect(results)["counts"]["completed"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    found = status.collect(results)
    assert found["counts"]["completed"] == 1
    assert found["submissions"][0]["executor"] == "submitit-local"


def test_an_interrupted_submitit_local_command_stops_its_jobs(tmp_path):
    """Ctrl-C while run --executor submitit-local waits for its job (SIGINT to the command alone
    here; a terminal sends it to the job's processes as well): the job stops too, and leaves its run
    to resume."""
    results = tmp_path / "results"
    config = make_config("digits-conv2", "dense", 0, {"epochs": "100000", "patience": "0"})
    command = [sys.executable, "-m", "subnetbench", "run", "digits-conv2", "--method", "dense",
               "--set", "epochs=100000", "--set", "patience=0", "--device", "cpu", "--no-progress",
               "--results", str(results), "--executor", "submitit-local"]
    process = subprocess.Popen(command, cwd=REPO, env=child_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=interruptible)
    try:
        deadline = time.monotonic() + 300
        run_file = ResultsLayout(results).run_file(config.run_id)
        while not (locks.holder(results, config.run_id) and run_file.exists()) \
                and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert locks.holder(results, config.run_id), "the job never started training"
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 130 and "the local jobs are stopped too" in out
        deadline = time.monotonic() + 120
        while locks.holder(results, config.run_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        (run,) = status.collect(results)["runs"]
        assert run["state"] == "interrupted"  # its lock released: the job is gone
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of the job is left


def test_missing_data_stops_the_command_before_anything_is_submitted(tmp_path, capsys):
    empty = tmp_path / "no-data"
    code = cli.main(["run", "cifar10-conv2", "--method", "dense", "--results", str(tmp_path / "r"),
                     "--data", str(empty), "--no-download", "--executor", "submitit-local"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(empty) in err
    assert not (tmp_path / "r").exists()


def test_a_job_whose_run_fails_fails_with_its_log(tmp_path, capsys):
    """A fault only the job meets (a directory where the run's checkpoint goes: nothing checks that
    path before the run): the job fails, the command says so with the job's log, and the run is
    recorded as failed with the error."""
    config = make_config("digits-conv2", "dense", 0, {"epochs": "1"})
    ResultsLayout(tmp_path).checkpoint(config.run_id).mkdir(parents=True)
    assert cli.main(RUN + ["--results", str(tmp_path), "--executor", "submitit-local"]) == 1
    captured = capsys.readouterr()
    failed = [line for line in captured.out.splitlines() if ": failed: FileFault: " in line]
    assert len(failed) == 1 and "seed 0" in failed[0] and config.config_hash in failed[0]
    assert "failed (" in captured.err and "its log: " in captured.err
    assert "is a directory" in captured.err
    assert stored(tmp_path, config)["status"] == "failed"
    assert ResultsLayout(tmp_path).checkpoint(config.run_id).is_dir()  # left as it is


def test_a_newer_result_file_stops_the_command_before_anything_is_submitted(tmp_path, capsys):
    config = make_config("digits-conv2", "dense", 0, {"epochs": "1"})
    path = ResultsLayout(tmp_path).run_file(config.run_id)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": "subnetbench.result", "format_version": 99}))
    assert cli.main(RUN + ["--results", str(tmp_path), "--executor", "submitit-local"]) == 2
    captured = capsys.readouterr()
    assert "submitted" not in captured.out and "newer" in captured.err
    assert json.loads(path.read_text())["format_version"] == 99  # left as it is
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # no plan, no job folder


def _task(results_dir, configs, **options) -> job.JobTask:
    """The task of one job: each config a unit of its own, trained on the CPU."""
    settings = RunSettings(**{"device": "cpu", "save_subnetwork": False, **options})
    return job.JobTask([[config] for config in configs], str(results_dir), settings, "auto", 1)


def _failing_fit(run_id: str, error: BaseException):
    """runner.fit, but raising ``error`` for the run ``run_id``."""
    real_fit = runner.fit

    def fit(trainers, *args, **kwargs):
        if trainers[0].name == run_id:
            raise error
        return real_fit(trainers, *args, **kwargs)
    return fit


def test_a_unit_that_raises_any_error_does_not_stop_the_job(tmp_path, monkeypatch, capsys):
    """CUDA out of memory is a RuntimeError, not an error of subnetbench's: the job goes on with its
    other units, then fails naming the unit."""
    first, second = (make_config("digits-conv2", "dense", seed, {"epochs": "1"}) for seed in (0, 1))
    monkeypatch.setattr(runner, "fit", _failing_fit(first.run_id, RuntimeError("CUDA out of memory")))
    with pytest.raises(job.JobFailed) as failed:
        job.run_task(_task(tmp_path, [first, second]))
    assert str(failed.value).startswith("1 of the job's 2 unit(s) failed: ")
    assert f"{first.run_id}: RuntimeError: CUDA out of memory" in str(failed.value)
    assert second.run_id not in str(failed.value)
    assert stored(tmp_path, second)["status"] == "completed"
    assert stored(tmp_path, first)["status"] == "failed"
    out = capsys.readouterr().out
    assert f"{first.run_id}: failed: RuntimeError: CUDA out of memory" in out
    assert f"{second.run_id}: done," in out


@pytest.mark.parametrize("stop, left", [
    (KeyboardInterrupt(), "running"),
    (SystemExit(-1), "running"),  # submitit's exit once it has requeued the job
    # submitit's end of a job at its time limit once it was requeued 3 times
    (UncompletedJobError("Job not requeued because: timed-out too many times."), "failed"),
])
def test_an_interrupt_or_submitits_end_of_the_job_stops_it_at_once(tmp_path, monkeypatch, stop, left):
    first, second = (make_config("digits-conv2", "dense", seed, {"epochs": "1"}) for seed in (0, 1))
    monkeypatch.setattr(runner, "fit", _failing_fit(first.run_id, stop))
    with pytest.raises(type(stop)):
        job.run_task(_task(tmp_path, [first, second]))
    assert stored(tmp_path, first)["status"] == left  # "running": resumed by the next attempt
    assert not ResultsLayout(tmp_path).run_file(second.run_id).exists()  # the next unit never started


def test_a_requeued_task_forces_again_only_what_its_stopped_attempts_did_not_do(tmp_path):
    config = make_config("digits-conv2", "dense", 0, {"epochs": "1"})
    attempt = job.Attempt()
    attempt({"kind": "start", "run_id": "a", "label": "a", "epochs": 3, "epoch": 0})
    attempt({"kind": "completed", "run_id": "a"})
    attempt({"kind": "start", "run_id": "b", "label": "b", "epochs": 3, "epoch": 0})
    unforced = _task(tmp_path, [config])
    assert job.requeued(unforced, attempt) is unforced  # nothing to undo: it reuses and resumes
    forced = job.requeued(_task(tmp_path, [config], force=True), attempt)
    assert (forced.completed, forced.begun) == ({"a"}, {"a", "b"})
    attempt = job.Attempt()  # the second attempt, stopped too
    attempt({"kind": "start", "run_id": "c", "label": "c", "epochs": 3, "epoch": 0})
    again = job.requeued(forced, attempt)
    assert (again.completed, again.begun) == ({"a"}, {"a", "b", "c"})
    assert again.settings.force is True and again.units == forced.units


def test_a_requeued_forced_seed_batch_trains_only_its_unfinished_seeds_from_their_checkpoints(
        tmp_path, monkeypatch):
    """A seed batch run with --force whose first seed the stopped attempt completed: the requeued
    job does not train that seed again, and keeps the other seed's checkpoint to resume it."""
    seeds = [make_config("digits-conv2", "aslp", seed, {"epochs": "1"}) for seed in (0, 1)]
    for config in seeds:
        execute(config, tmp_path, device="cpu", progress=False)
    ckpt = ResultsLayout(tmp_path).checkpoint(seeds[1].run_id)
    ckpt.write_bytes(b"the checkpoint the stopped attempt wrote")
    seen = {}
    real_resume = runner.resume

    def resume(new_trainer, path, run_id, device):
        seen[run_id] = path.exists()
        return real_resume(new_trainer, path, run_id, device)

    def fit(trainers, *args, **kwargs):
        seen["trained"] = [trainer.name for trainer in trainers]
        raise KeyboardInterrupt  # enough: what is trained, and from where, is known

    monkeypatch.setattr(runner, "resume", resume)
    monkeypatch.setattr(runner, "fit", fit)
    task = dataclasses.replace(_task(tmp_path, [], force=True), units=[seeds],
                               completed=frozenset({seeds[0].run_id}),
                               begun=frozenset(c.run_id for c in seeds))
    with pytest.raises(KeyboardInterrupt):
        job.run_task(task)
    assert seen == {seeds[1].run_id: True, "trained": [seeds[1].run_id]}


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the job's process in /proc")
def test_a_job_signalled_before_its_time_limit_is_requeued_and_resumes(tmp_path):
    """The signal SLURM sends a job before its time limit (or when it preempts it), sent to a job of
    submitit's local executor: the job requeues itself and its run resumes from its checkpoint, to
    the result of an uninterrupted run."""

    wanted = ClusterOptions(executor="submitit-local")
    config = make_config("digits-conv2", "dense", 0, {"epochs": "6", "patience": "0"})
    settings = RunSettings(device="cpu", save_subnetwork=False)
    (submitted,) = cluster.submit(wanted, [[config]], settings, tmp_path / "jobs").jobs
    ckpt = ResultsLayout(tmp_path / "jobs").checkpoint(config.run_id)
    deadline = time.monotonic() + 120
    while not ckpt.exists() and not submitted.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    tasks = _children(int(submitted.job_id))  # the job's controller runs the task as its child
    assert ckpt.exists() and len(tasks) == 1, "the job ended before it could be signalled"
    os.kill(tasks[0], LocalJobEnvironment._usr_sig())
    (done,) = submitted.result()
    assert done.status == "completed"
    log = Path(submitted.paths.stdout).read_text()
    assert "Requeued job" in log and log.count("Starting with JobEnvironment") == 2
    result = stored(tmp_path / "jobs", config)
    inline = execute(config, tmp_path / "inline", device="cpu", progress=False)
    assert outcome(result) == outcome(inline)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the job's process in /proc")
def test_a_forced_job_signalled_before_its_time_limit_does_not_force_again(tmp_path):
    """A job of two runs with --force, signalled as before its time limit while it trains the second:
    the requeued job neither trains the first again (its attempt completed it) nor restarts the
    second from scratch (it resumes from the checkpoint the stopped attempt wrote)."""
    results = tmp_path / "jobs"
    first = make_config("digits-conv2", "dense", 0, {"epochs": "1"})
    second = make_config("digits-conv2", "dense", 1, {"epochs": "12", "patience": "0"})
    before = {config.run_id: execute(config, results, device="cpu", progress=False)
              for config in (first, second)}  # the completed results --force computes again
    wanted = ClusterOptions(executor="submitit-local", runs_per_job=2)
    settings = RunSettings(device="cpu", force=True, save_subnetwork=False)
    (submitted,) = cluster.submit(wanted, [[first], [second]], settings, results).jobs
    ckpt = ResultsLayout(results).checkpoint(second.run_id)
    deadline = time.monotonic() + 120
    while not ckpt.exists() and not submitted.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    tasks = _children(int(submitted.job_id))
    assert ckpt.exists() and len(tasks) == 1, "the job ended before it could be signalled"
    first_forced = ResultsLayout(results).run_file(first.run_id).read_bytes()  # the stopped attempt's result
    assert json.loads(first_forced)["timings"] != before[first.run_id]["timings"]
    os.kill(tasks[0], LocalJobEnvironment._usr_sig())
    done = submitted.result()
    assert [d.status for d in done] == ["completed", "completed"] and done[0].reused
    log = Path(submitted.paths.stdout).read_text()
    assert "Requeued job" in log and log.count("Starting with JobEnvironment") == 2
    assert f"{second.run_id}: resumes from its checkpoint after epoch " in log
    assert ResultsLayout(results).run_file(first.run_id).read_bytes() == first_forced  # not trained again
    assert outcome(stored(results, second)) == outcome(before[second.run_id])
