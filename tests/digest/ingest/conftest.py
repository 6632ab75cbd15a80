import pytest


@pytest.fixture(autouse=True)
def _local_test_servers_allowed(settings) -> None:
    """The test servers listen on 127.0.0.1, which the fetcher refuses unless the operator
    lists it; tests of that refusal set their own list."""
    settings.FETCH_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
