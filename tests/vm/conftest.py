"""tests/vm/ runs inside the VM lane (tests/vm/guest.sh sets the env); elsewhere it is skipped.
On the host, tests/test_vmlane.py boots the VM and checks what these tests reported."""
import os

import pytest

IN_VM = bool(os.environ.get("DOORSTATION_GPIOSIM_CHIP"))


def pytest_collection_modifyitems(config, items):
    if IN_VM:
        return
    skip = pytest.mark.skip(reason="VM-lane test: runs inside scripts/vmlane (see tests/test_vmlane.py)")
    for item in items:
        if "tests/vm/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)
