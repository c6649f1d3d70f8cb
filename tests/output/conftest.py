"""The output tests' receivers hold the loopback ports they were given until they are up
(receivers.free_port); whatever a test left held is released after it."""

import pytest

from receivers import release_ports


@pytest.fixture(autouse=True)
def held_ports_released():
    yield
    release_ports()
