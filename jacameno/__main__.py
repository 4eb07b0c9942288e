"""`python -m jacameno`: the `jacameno` command (jacameno.cli)."""

import sys

from jacameno.cli import main

if __name__ == "__main__":  # importing the module (a tool scanning the package) runs nothing
    sys.exit(main())
