import sys

from metricflow.cli.main import main

sys.exit(main())
