"""``python -m pytest_ckpt``: the ``pytest-ckpt`` command."""
from pytest_ckpt.cli import main
raise SystemExit(main())
