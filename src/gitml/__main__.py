"""`python -m gitml` is the `gitml` command."""

import sys

from gitml.cli.main import main

sys.exit(main())
