import sys

from subnetbench.reports import main

sys.exit(main())
