import sys

from metricflow.cli import main

sys.exit(main())
