"""`python -m scripts.platform <command>`; scripts/platformctl runs the bootstrap first."""

from scripts.platform.cli import main

raise SystemExit(main())
