"""`python -m gankit.tune --worker JSON`: one extra worker process of `gankit tune --workers K`."""

import sys

from gankit.tune.commands import worker_main

sys.exit(worker_main(sys.argv[1:]))
