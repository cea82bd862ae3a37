"""Training throughput of the suite against a re-creation of the official pipeline, side by side.

    subnetbench speed [--device cpu|cuda] [--quick] [--networks conv2,conv4]
                      [--methods aslp,dense] [--variants channels_last,bf16,compile]
                      [--seed-batches 1,2,4,8] [--json PATH]

(the same as ``python -m subnetbench.benchmark.speed``).

For every network and method it times training epochs of two pipelines in one process, interleaved
(ours, reference, ours, reference...) after untimed warm-up epochs, and reports the median:

- ``reference``: :mod:`benchmark.speed.reference_pipeline` (PIL transforms in DataLoader worker
  processes, host-to-device copies per batch, the official two-Gumbel ASLP masks, a host read per
  step);
- ``ours``: the suite's training path, :meth:`Trainer.train_epoch` over uint8 data on the device
  with augmentation on, built as :func:`build_run.build_run` builds a run, with a run's cuDNN settings
  (``cudnn.benchmark`` on).

A method is any registered method (``--methods``, default the paper's comparison aslp, supermask,
edge_popup, dense), or ``NAME+sr`` for it with the smart rescale where it has one
(``smart_rescale=true``, for a method whose options have that boolean); the
options are validated as ``subnetbench run`` validates them. With more than one optimiser (``+sr``)
the reference steps once per optimiser and batch, as Lightning 1.x does.

Both train on generated data of CIFAR-10's shape (3 x 32 x 32, 10 classes; the speed does not
depend on the pixel values). Epoch times come from CUDA events on a GPU and ``time.perf_counter``
on a CPU. Further rows time the fast-path options of the recipe (``variant``: ``channels_last``,
``bf16`` autocast, ``compile``; ``fast`` is all of them together; on a CPU too) and the seed-batched
training of :func:`benchmark.runner.execute_runs` (``seeds_batched`` = k seeds in one process; the
throughput is the aggregate over the k seeds).

Every row of the JSON (``--json``) has: ``network``, ``method``, ``device``, ``variant``,
``seeds_batched`` (null for single-seed rows), ``seed_batch_mode``, ``batch_size``,
``ours_images_per_s``, ``reference_images_per_s`` (the reference's default pipeline),
``ratio`` (ours / reference), ``ours_epoch_s`` and ``reference_epoch_s`` (medians; the per-epoch
lists in ``*_epoch_s_all``), ``peak_memory_kind``, ``ours_peak_memory_bytes``,
``reference_peak_memory_bytes``, ``update_passes`` (training passes a batch: 2 for alternating
smart rescale), ``train_flop_per_image`` (of all the passes) and ``ours_flop_per_s`` /
``reference_flop_per_s`` (achieved FLOP/s); a default row also ``checkpoint_s`` (writing the run's
checkpoint as a run does) and ``evaluation_samples``. A row whose measurement raised has ``error``
instead of the figures; the others are still measured, the JSON is written (``failed_rows`` counts
them) and the command exits 1. Validation (``eval``, one row a network and method) is timed as a
run validates: :meth:`Trainer.validate`, on sampled masks where the method and recipe say so, at the
protocols' batch of 256.

Peak memory (``peak_memory_kind``): on CUDA ``torch.cuda.max_memory_allocated`` while the pipeline
is built and warmed up, less what was allocated before (its model, optimiser states and activations;
our uint8 data set on the device is shared by the rows and reported once as ``ours_data_bytes``). On
a CPU the growth of the main process's peak resident set (``resource.getrusage(...).ru_maxrss``)
over the same block, after the allocator's free pages are given back (glibc ``malloc_trim``) and the
peak is reset to the current resident set through ``/proc/self/clear_refs`` (Linux; without it the
growth of the lifetime peak, a lower bound). Memory that PyTorch's CPU allocator or glibc keeps
between rows can still make a figure low. The reference's worker processes are not counted.

FLOPs: multiply-accumulates of the conv and linear layers counted from the network's shapes, 2 FLOP
each; a training pass is counted as 3 forward passes (forward, gradient of the input and of the
weights), times the method's update passes a batch. Mask sampling and elementwise work are not
counted.

The grid estimate: the paper's grid (Conv2/4/6 x {aslp, aslp+SR, supermask, edge_popup} x {SC, no
SC} x 5 seeds = 120 runs; 40 runs a network, of the networks measured) at the official budget
(45,000 training and 5,000 validation images per epoch, up to 1000 epochs, early stopping with
patience 100) from the measured epoch times, plus what each run pays besides: its checkpoints at
the default interval (``checkpoint_interval=auto``, from the measured ``checkpoint_s``) and its test
(10,000 images, once per sampled mask of the stochastic evaluation and once extracted). The mean
epochs per run is an ASSUMPTION, not a measurement: epochs to the best validation accuracy
(``--epochs-to-best``, default 200) plus the patience; the 1000-epoch cap is printed as the upper
bound. SC does not change the cost. aslp+SR costs two training passes per batch in both pipelines
(Lightning 1.x runs ``training_step`` once per optimiser in the reference; ours does the same by
default, ``smart_rescale_update=alternating``), estimated as twice aslp's training time unless
``aslp+sr`` is measured (``--methods aslp+sr``). This grid is the speed study's simplified one, not
``--grid cifar10``.

On a CPU the main process trains with one torch thread by default (``--threads``), as
``subnetbench run`` does there; the reference's DataLoader workers run beside it.

``--quick`` times a few batches per configuration instead of full epochs (on a CPU also with batch 64
instead of 256, so that the table takes minutes on two cores: per-step costs such as mask sampling
then weigh 4 times more per image than at batch 256, in both pipelines).

The code, one job a module: :mod:`.measure` (epoch times, peak memory), :mod:`.flops` (FLOPs of a
training step), :mod:`.study` (generated data, the methods of the study, :class:`Bench`: the rows),
:mod:`.estimate` (the paper's grid), :mod:`.table` (the printed table), :mod:`.cli` (the options,
``main``, which this package does not import: it reads this docstring),
:mod:`.reference_pipeline` (the re-created official pipeline).
"""
from __future__ import annotations

from subnetbench.benchmark.speed.estimate import grid_estimate
from subnetbench.benchmark.speed.flops import forward_macs, train_flop_per_image
from subnetbench.benchmark.speed.table import format_table

__all__ = ["format_table", "forward_macs", "grid_estimate", "train_flop_per_image"]
