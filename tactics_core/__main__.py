import os
import sys

from tactics_core.cli import main
from tactics_core.training import distributed

code = main()
if distributed.left_a_group():
    # A torchrun rank whose work is done and written: end here. Python's own teardown would
    # next destroy gloo's C++ state, which now and then aborts a finished rank
    # ("terminate called without an active exception"), and torchrun would call the run failed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
