"""`python -m keng.runtime.cli`: the same as the `keng` console script."""

import sys

from keng.runtime.cli.main import main

sys.exit(main())
