"""``python -m pytest_ckpt``: the ``pytest-ckpt`` command."""
from pytest_ckpt.inspect.cli import main

raise SystemExit(main())
