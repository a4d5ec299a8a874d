"""`python -m sandbox [run|approve|deny|advance] ...` until the sellerpulse CLI wires it."""

import sys

from sandbox.cli import main

sys.exit(main())
