"""`python -m services.auth` serves; `python -m services.auth create-key ...` makes a key on the
command line (the first admin key: no key exists yet to call CreateApiKey with)."""

import sys

if len(sys.argv) > 1:
    from services.auth.cli import main

    sys.exit(main(sys.argv[1:]))

from services.auth.servicer import setup
from services.auth.settings import AuthSettings
from services.runtime.app import run_service

run_service("auth", setup, AuthSettings)
