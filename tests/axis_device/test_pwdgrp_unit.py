"""pwdgrp.cgi's two pure pieces: sgrp -> role, and the action=get text (the real CGI against a
real station: tests/test_pwdgrp.py)."""
import pytest

from daemon.api.axis.pwdgrp import PwdgrpError, groups_text, role_of


@pytest.mark.parametrize("sgrp, role", [
    ("viewer", "viewer"), ("viewer:ptz", "viewer"), ("viewer:operator", "operator"),
    ("operator", "operator"), ("viewer:operator:admin", "admin"), ("viewer:operator:admin:ptz", "admin"),
    ("admin:viewer", "admin"), ("viewer::operator", "operator"),
])
def test_role_of_takes_the_highest_group(sgrp, role):
    assert role_of(sgrp) == role


@pytest.mark.parametrize("sgrp", ["", "ptz", "root", "viewer:root", "viewer:" * 10, "Viewer"])
def test_role_of_refuses_unknown_or_empty_groups(sgrp):
    with pytest.raises(PwdgrpError):
        role_of(sgrp)


def test_groups_text_is_cumulative_and_lists_every_group_axis_reads():
    text = groups_text([{"name": "a", "role": "admin"}, {"name": "o", "role": "operator"},
                        {"name": "v", "role": "viewer"}])
    assert text.split("\r\n") == ['admin="a"', 'operator="a,o"', 'viewer="a,o,v"', 'ptz=""',
                                  'users="a,o,v"', 'digusers="a,o,v"', ""]
    assert groups_text([]).startswith('admin=""\r\n')
