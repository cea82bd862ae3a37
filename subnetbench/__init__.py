"""subnetbench: a reproducibility benchmark for extracting subnetworks from neural networks.

Everything installs under this one name, so nothing generic (``methods``, ``benchmark``,
``reports``) lands in site-packages. The folders of the repository are its subpackages:

- ``subnetbench.methods`` (``methods/``): the method registry and the plugin API;
- ``subnetbench.benchmark`` (``benchmark/``): the engine: protocols, data, training, runs, results;
- ``subnetbench.benchmark.speed`` (``benchmark/speed/``): the speed study;
- ``subnetbench.benchmark.selftest`` (``benchmark/selftest.py``): ``subnetbench selftest``, the
  checks a user runs on a GPU before a long grid;
- ``subnetbench.reports`` (``reports/``): the HTML report (imports no torch);
- this folder: the command line (``subnetbench.cli``) and what the engine and the report share:
  the result-file records (``subnetbench.records``, read by ``subnetbench.record_reading``),
  atomic file writes (``subnetbench.files``), SHA-256 checks of the files the suite trusts
  (``subnetbench.integrity``) and the errors a user sees as one paragraph (``subnetbench.errors``,
  ``subnetbench.console``); the lock of each run (``subnetbench.locks``), the plans and
  ``subnetbench status`` (``subnetbench.plans``, ``subnetbench.status``);
- ``subnetbench.launch``: how ``run`` launches its runs (inline, the worker pool of ``--jobs`` and
  ``--devices``, submitit jobs), behind one executor interface.
"""
from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("subnetbench")
except importlib.metadata.PackageNotFoundError:  # a source tree that was not installed
    __version__ = "0+unknown"
