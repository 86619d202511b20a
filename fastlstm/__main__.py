"""``python -m fastlstm``: the same command line as the ``fastlstm`` script (fastlstm/cli.py)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
