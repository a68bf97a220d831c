import sys

from fedisora.cli import main

sys.exit(main())
