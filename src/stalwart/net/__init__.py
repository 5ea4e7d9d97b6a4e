"""The network layer: settings, credentials, and a client for index pages and downloads.

- ``settings``   :class:`NetworkSettings`, from options and the variables pip and uv users set
- ``auth``       credentials from URLs, netrc and keyring, never shown
- ``client``     :class:`Client`: pages (HTTP-cached), small files, verified downloads
- ``findlinks``  what a ``--find-links`` directory or page offers

Importing this package is cheap: httpx, truststore and ssl are imported by the first request
that goes to the network.
"""

from .auth import Authenticator, Credentials, KeyringLookup, keyring_lookup
from .client import (
    DEFAULT_FETCH_LIMIT,
    MAX_DOWNLOAD_BYTES,
    MAX_PAGE_BYTES,
    MAX_REDIRECTS,
    STRONG_HASHES,
    Client,
    Downloaded,
    Page,
)
from .findlinks import find_links, list_directory
from .settings import (
    DEFAULT_INDEX_URL,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_BUDGET,
    DEFAULT_TIMEOUT,
    IndexStrategy,
    NetworkSettings,
)

__all__ = [
    # settings
    "NetworkSettings",
    "IndexStrategy",
    "DEFAULT_INDEX_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_RETRIES",
    "DEFAULT_RETRY_BUDGET",
    # client
    "Client",
    "Page",
    "Downloaded",
    "MAX_PAGE_BYTES",
    "DEFAULT_FETCH_LIMIT",
    "MAX_DOWNLOAD_BYTES",
    "MAX_REDIRECTS",
    "STRONG_HASHES",
    # credentials
    "Authenticator",
    "Credentials",
    "KeyringLookup",
    "keyring_lookup",
    # find-links
    "find_links",
    "list_directory",
]
