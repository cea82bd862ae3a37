"""The command line's options of ``subnetbench run``; imports no torch, so that ``--help`` is quick.
:func:`subnetbench.run_command.run_options` turns them into the frozen options of the run."""
from __future__ import annotations

import argparse

from subnetbench.benchmark.grids import GRIDS

EXECUTORS = ("inline", "slurm", "submitit-local")
JOB_NAME = "subnetbench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of ``run``."""
    parser.add_argument("protocols", nargs="*", help="protocol names ({dataset}-{network}) or a "
                        "dataset name for all its protocols")
    parser.add_argument("--method", action="append", help="method name (repeatable); 'all' for "
                        "every registered method (the default)")
    parser.add_argument("--grid", help=f"a named grid instead of protocols and methods: "
                        f"{', '.join(sorted(GRIDS))}")
    parser.add_argument("--seeds", default="0", help="comma-separated root seeds (default 0)")
    parser.add_argument("--results", default="results", help="results directory (default results)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="an option: a recipe key (epochs=5), method.KEY for every method, or "
                        "NAME.KEY for method NAME only (repeatable)")
    parser.add_argument("--recipe", metavar="NAME", help="a recipe preset: aslp "
                        "(the default) or edge_popup (SGD, cosine, 100 epochs, batch 128, DA)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--data", help="data cache directory (default $SUBNETBENCH_DATA or "
                        "~/.cache/subnetbench)")
    parser.add_argument("--no-download", action="store_true", help="never download data")
    parser.add_argument("--force", action="store_true", help="run again even if finished")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic CUDA kernels (slower); CPU runs always are")
    parser.add_argument("--jobs", type=int, default=1, help="CPU runs at once, in worker processes "
                        "(default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each CPU run "
                        "(default 1: for these small networks one thread a run and one run a core is "
                        "fastest; the numbers do not depend on --jobs)")
    parser.add_argument("--no-save-subnetwork", action="store_true",
                        help="do not write the extracted subnetwork (RESULTS/subnetworks/RUN_ID.pt; "
                        "by default it is written, and the benchmark suite checks it)")
    parser.add_argument("--checkpoint-every", type=int, default=1, metavar="EPOCHS",
                        help="checkpoint interval in epochs (default 1)")
    parser.add_argument("--tensorboard", metavar="DIR", help="also write each run's per-epoch curves "
                        "(loss, accuracy, validation accuracy, epoch time) for TensorBoard under "
                        "DIR/<run id>; needs the tensorboard package (pip install tensorboard)")
    parser.add_argument("--report", metavar="DIR", help="write the report of the results "
                        "directory here at the end")
    parser.add_argument("--seed-batch", type=int, default=1, metavar="K",
                        help="train up to K seeds of one configuration together in one process "
                        "(the result files and run ids of separate runs; any method that trains "
                        "one round; see benchmark/seed_batch.py)")
    parser.add_argument("--seed-batch-mode", choices=("auto", "grouped", "loop"), default="auto",
                        help="grouped: one grouped convolution for all seeds (for GPUs); loop: each "
                        "seed's own forward, the arithmetic of separate runs; auto (default): "
                        "grouped on CUDA, loop on a CPU")
    parser.add_argument("--devices", metavar="LIST",
                        help="CUDA devices that run runs at once, one run per device: 'all' or "
                        "indices such as 0,1,2,3 (torch's, within CUDA_VISIBLE_DEVICES); like --jobs "
                        "on a CPU, and exclusive with it")
    _add_cluster_arguments(parser)


def _add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``run`` for submitit executors."""
    group = parser.add_argument_group(
        "clusters (submitit)", "--executor slurm submits the runs as a SLURM job array and waits "
        "for them (--no-wait: returns after submitting); --executor submitit-local runs the same "
        "jobs on this machine. The --slurm-* options are sbatch's; submitit-local takes only "
        "--slurm-time and --slurm-gpus-per-task.")
    group.add_argument("--executor", choices=EXECUTORS, default="inline",
                       help="inline (the default): in this process, or --jobs/--devices workers; "
                       "slurm: a SLURM job array through submitit; submitit-local: submitit's local "
                       "executor (the same job path, on this machine)")
    group.add_argument("--runs-per-job", type=int, default=1, metavar="N",
                       help="runs per job (default 1; with --seed-batch K at least the K seeds of a "
                       "batch): several short runs share one job's start-up and queueing")
    group.add_argument("--no-wait", action="store_true",
                       help="return once the jobs are submitted (follow them with subnetbench status)")
    group.add_argument("--submitit-folder", metavar="DIR",
                       help="submitit's job files and logs (default RESULTS/submitit)")
    group.add_argument("--slurm-partition", metavar="NAME", help="sbatch --partition")
    group.add_argument("--slurm-time", metavar="TIME",
                       help="wall time of one job (required with --executor slurm): minutes, "
                       "HH:MM:SS or D-HH:MM:SS; a job that reaches it is requeued (3 times at most, "
                       "submitit's default) and its runs resume from their checkpoints")
    group.add_argument("--slurm-gpus-per-task", type=int, metavar="N", help="sbatch --gpus-per-task "
                       "of the job's one task (--ntasks-per-node=1); 1 for the CIFAR grids (each "
                       "job's runs use its first GPU)")
    group.add_argument("--slurm-cpus-per-task", type=int, metavar="N", help="sbatch --cpus-per-task")
    group.add_argument("--slurm-mem", metavar="SIZE", help="sbatch --mem, such as 16G")
    group.add_argument("--slurm-array-parallelism", type=int, metavar="N",
                       help="array tasks running at once (sbatch --array=...%%N; default 256)")
    group.add_argument("--slurm-account", metavar="NAME", help="sbatch --account")
    group.add_argument("--slurm-qos", metavar="NAME", help="sbatch --qos")
    group.add_argument("--slurm-constraint", metavar="FEATURES", help="sbatch --constraint")
    group.add_argument("--slurm-setup", action="append", metavar="LINE",
                       help="a shell line run before each job, such as 'module load cuda' "
                       "(repeatable)")
    group.add_argument("--slurm-param", action="append", metavar="KEY=VALUE",
                       help="any other sbatch option, such as mail-type=END (repeatable)")
    group.add_argument("--slurm-job-name", metavar="NAME", help=f"job name (default {JOB_NAME})")
