import sys

from benchmarks.api.run import main

sys.exit(main())
