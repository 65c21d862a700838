"""import: how long ``import X`` takes in a fresh interpreter.

Each run starts ``python -c "import X"`` as a new process and times it to the
end; the bare interpreter (``python -c "pass"``) runs in the same rounds, and
the table shows each median less the bare interpreter's median.
"""

from __future__ import annotations

import subprocess
import sys

from ..core import Case, Engine, Outcome, Run


def start(module: str | None) -> Run:
    code = "pass" if module is None else f"import {module}"

    def run() -> Outcome:
        subprocess.run([sys.executable, "-c", code], check=True)
        return Outcome(0.0)

    return run


MODULES = [
    ("chainrule", "chainrule", ()),
    ("numpy", "numpy", ()),
    ("torch", "torch", ("torch",)),
    ("autograd", "autograd", ("autograd",)),
    ("micrograd", "micrograd.engine", ("micrograd",)),
]


def cases(size: str) -> list[Case]:
    engines = [Engine("python (nothing imported)", lambda: start(None))]
    engines += [
        Engine(name, (lambda m=module: start(m)), needs=needs) for name, module, needs in MODULES
    ]
    return [
        Case(
            name="import",
            group="import",
            title='import: a fresh `python -c "import X"`, less the bare interpreter\'s start',
            baseline="python (nothing imported)",
            engines=engines,
            repeat={"full": 10, "quick": 5, "tiny": 1}[size],
            unit="s",
            per_label="to import",
            subtract_baseline=True,
            checked=False,
            threads=None,
        )
    ]
