"""``python -m sphereviz`` is the ``sphereviz`` command."""

import sys

from sphereviz.cli import main

sys.exit(main())
