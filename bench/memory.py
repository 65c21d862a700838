"""``python -m bench.memory ENGINE STEPS``: one engine's deepchain memory, as JSON.

The deepchain case runs this in a fresh process for each engine, so that no
engine's measurement sees memory another engine freed.
"""

import sys

from .cases.deepchain import main

if __name__ == "__main__":
    main(sys.argv[1:])
