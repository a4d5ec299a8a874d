"""`python -m sellerpulse ...`, the same as the `sellerpulse` command."""

import sys

from sellerpulse.cli import main

sys.exit(main())
