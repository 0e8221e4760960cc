"""``python -m earshot``: the command line (also how ``torchrun -m earshot train ...`` starts it)."""

import sys

from earshot.cli import main

if __name__ == "__main__":
    sys.exit(main())
