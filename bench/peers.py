"""Thread settings, so that every engine of a case runs under the same rules.

numpy's BLAS and PyTorch's operators each keep a pool of threads, one per
core.  On arrays as small as those of most cases the work is hardly worth
splitting, but the threads still meet at barriers, and on a machine where any
other process wants a core a barrier waits for a descheduled thread: a digits
training loop that took 0.1 s with one PyTorch thread took 2 to 13 s with two
on a busy 2-core machine, and numpy's small products showed the same kind of
stalls.  So every case except the compute-bound ``bigmlp`` runs each engine
with one BLAS thread and one PyTorch thread (``Case.threads = 1``), the
fastest setting at those sizes; ``bigmlp`` and ``import`` keep the defaults.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager


@contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Inside the block, BLAS libraries and PyTorch (if loaded) use at most ``n`` threads.

    None leaves every library as it is.  BLAS limits need ``threadpoolctl``
    (installed with scikit-learn); without it only PyTorch is limited.
    """
    if n is None:
        yield
        return
    with ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            stack.enter_context(threadpool_limits(limits=n, user_api="blas"))
        torch = sys.modules.get("torch")
        if torch is not None:
            before = torch.get_num_threads()
            torch.set_num_threads(n)
            stack.callback(torch.set_num_threads, before)
        yield
