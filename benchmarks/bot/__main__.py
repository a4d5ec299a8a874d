import sys

from benchmarks.bot.run import main

sys.exit(main())
