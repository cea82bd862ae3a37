"""``python -m subnetbench.benchmark.speed``: the same as ``subnetbench speed``."""
import sys

from subnetbench.benchmark.speed.cli import main

sys.exit(main())
