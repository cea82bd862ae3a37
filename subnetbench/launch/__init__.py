"""How ``subnetbench run`` launches its runs: one small executor interface and its implementations.

- :mod:`.options`: the frozen options of a run command, built once by the command line;
- :mod:`.arguments`: the command line's options of ``run`` (imports no torch);
- :mod:`.outcome`: what happened to a run (:class:`~.outcome.RunOutcome`), and its line;
- :mod:`.executors`: the interface, inline runs, the worker pool of ``--jobs``/``--devices``, and
  :func:`~.executors.choose_executor`, the one place that picks one;
- :mod:`.pool`: the worker processes of the pool; :mod:`.jobs`: submitit jobs (local or SLURM),
  :mod:`.cluster` their options and body, :mod:`.cluster_job` the callable a job runs;
- :mod:`.prepare`: what is checked and written before the first run.
"""
