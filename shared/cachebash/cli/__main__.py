import sys

from cachebash.cli import main

sys.exit(main())
