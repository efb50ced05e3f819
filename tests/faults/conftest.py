"""The fixture the fault tests over the small SQL county share."""

import pytest

from faults.sql_county import make_county


@pytest.fixture
def county(tmp_path, extension_cache):
    """An environment factory (a fresh store each) and the registry's URL per month's end."""
    return make_county(tmp_path, extension_cache)
