import sys

from subnetbench.cli import main

sys.exit(main())
