import sys

from reports import main

sys.exit(main())
