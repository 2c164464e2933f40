"""`python -m runtime.cli`: the same as the `keng` console script."""

import sys

from runtime.cli.main import main

sys.exit(main())
