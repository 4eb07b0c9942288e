import sys

from jacameno.cli import main

sys.exit(main())
