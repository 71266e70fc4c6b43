"""`python -m cachebash` is the `cachebash` command, for environments where the script is not on PATH."""

import sys

from cachebash.cli import main

sys.exit(main())
