"""tests/reuse runs in a process of its own, with tests/reuse/settings.py.

Under the portal's settings (the main suite) only test_in_own_process.py is
collected, and it starts that process; under the reuse settings, everything
else is, with no conftest above this folder (--confcutdir), so no fixture of
the portal's suite can lend twofactor what it lacks.
"""

import os

REUSE_SETTINGS = "tests.reuse.settings"

if os.environ.get("DJANGO_SETTINGS_MODULE") == REUSE_SETTINGS:
    collect_ignore = ["test_in_own_process.py"]
else:
    collect_ignore = ["test_flows.py"]
